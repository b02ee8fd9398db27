#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Pixel checks of a screenshot (tests/it/22): how many pixels of a box
are near a colour, and how many colours a box holds.

    pixels.py count PNG X0 Y0 X1 Y1 RRGGBB [TOLERANCE]   -> a number
    pixels.py colours PNG X0 Y0 X1 Y1                     -> a number
    pixels.py size PNG                                    -> W H

Debian's python3-pil decodes the PNG (scripts/deps.sh test).
"""
import sys

from PIL import Image


def box(img, a):
    x0, y0, x1, y1 = (int(v) for v in a)
    w, h = img.size
    return img.crop((max(0, x0), max(0, y0), min(w, x1), min(h, y1)))


def near(p, c, tol):
    return all(abs(p[i] - c[i]) <= tol for i in range(3))


def main(argv):
    img = Image.open(argv[2]).convert('RGB')
    if argv[1] == 'size':
        print(*img.size)
        return 0
    region = box(img, argv[3:7])
    px = list(region.getdata())
    if argv[1] == 'colours':
        print(len(set(px)))
        return 0
    c = bytes.fromhex(argv[7])
    tol = int(argv[8]) if len(argv) > 8 else 40
    print(sum(1 for p in px if near(p, c, tol)))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))

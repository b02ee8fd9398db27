# SPDX-License-Identifier: MIT
"""Report metrics and params of an mlfs run, from Python.

    import mlfs
    mlfs.log('loss', 0.3, step=2)        # a metric: runs/NAME/metrics
    mlfs.log('kernel', 'linear')         # text is a param
    mlfs.param('lr', 0.1)                # a param: runs/NAME/params
    mlfs.log_many({'loss': 0.3, 'acc': 0.9}, step=2)

mlfs puts this module on PYTHONPATH of every run.  It appends lines to the
files named by $MLFS_METRICS (`name value [step]`) and $MLFS_PARAMS
(`name value`), each line in one write(2) to a file opened O_APPEND, so
that several processes of a run (DataLoader workers, ranks) may log at
once without mixing lines.  Outside a run (no $MLFS_METRICS) every call
does nothing, so that a script runs unchanged on a laptop.  Standard
library only.
"""
import math
import os
import re

__all__ = ['log', 'log_many', 'param', 'params']

_NAME = re.compile(r'[A-Za-z0-9_.:/-]{1,128}\Z')


def _check_name(name):
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError('mlfs: a name is 1 to 128 of A-Z a-z 0-9 _ . : / -,'
                         ' not %r' % (name,))


def _append(var, text):
    path = os.environ.get(var)
    if not path or not text:
        return False
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                 0o644)
    try:
        data = text.encode('utf-8', 'surrogateescape')
        while data:     # a regular file takes it whole; a signal may not
            data = data[os.write(fd, data):]
    finally:
        os.close(fd)
    return True


def _number(value):
    """The metric text of @value, or None when it is not a number."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (str, bytes)) or not hasattr(value, '__float__'):
        return None
    v = float(value)            # numpy and torch scalars too
    # nan and inf are written as they are: mlfs names the line in `error`
    return repr(v) if math.isfinite(v) else str(v)


def _param_line(name, value):
    _check_name(name)
    text = value if isinstance(value, str) else str(value)
    text = ' '.join(text.split())   # one line; blanks around it go anyway
    if not text:
        raise ValueError('mlfs: param %s has an empty value' % name)
    return '%s %s\n' % (name, text)


def _write_params(lines):
    """$MLFS_PARAMS, or where a target has none (ssh hosts), the metrics
    file with each line marked `@param`."""
    if os.environ.get('MLFS_PARAMS'):
        return _append('MLFS_PARAMS', ''.join(lines))
    return _append('MLFS_METRICS', ''.join('@param ' + l for l in lines))


def param(name, value):
    """Set param @name to @value (any text, one line); a later value
    replaces it."""
    _write_params([_param_line(name, value)])


def params(mapping):
    """Set several params at once."""
    _write_params([_param_line(k, v) for k, v in mapping.items()])


def _metric_line(name, value, step):
    _check_name(name)
    num = _number(value)
    if num is None:
        return None
    if step is None:
        return '%s %s\n' % (name, num)
    if isinstance(step, bool) or int(step) != step or step < 0:
        raise ValueError('mlfs: step is a whole number >= 0, not %r'
                         % (step,))
    return '%s %s %d\n' % (name, num, int(step))


def log(name, value, step=None):
    """Record metric @name = @value (at @step; without one, the next step
    of that metric).  A value that is not a number is a param instead."""
    line = _metric_line(name, value, step)
    if line is None:
        param(name, value)
    else:
        _append('MLFS_METRICS', line)


def log_many(values, step=None):
    """log() each item of the mapping @values at the same @step; the
    metrics go in one write, so a reader sees all of them or none."""
    lines, texts = [], []
    for k, v in values.items():
        line = _metric_line(k, v, step)
        if line is None:
            texts.append(_param_line(k, v))
        else:
            lines.append(line)
    _append('MLFS_METRICS', ''.join(lines))
    if texts:
        _write_params(texts)

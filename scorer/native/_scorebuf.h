/* The tree modules' score(features, out) buffers (_trees.c, _forest.c): a C-contiguous float32
 * [rows, n_features] matrix in, a float32 [rows] vector out, through the buffer protocol. */
#ifndef SCORER_SCOREBUF_H
#define SCORER_SCOREBUF_H

#include <Python.h>
#include <stdint.h>

static int scorebuf_is_float32(const Py_buffer *view) {
    const char *f = view->format ? view->format : "B";
    if (*f == '@' || *f == '=' || *f == '<') ++f;
    return view->itemsize == 4 && f[0] == 'f' && f[1] == '\0';
}

/* 0 with both views held (release them with scorebuf_release), or -1 with an exception set
 * and neither held. */
static int scorebuf_acquire(PyObject *features, PyObject *out, int32_t n_features, Py_buffer *x, Py_buffer *y) {
    if (PyObject_GetBuffer(features, x, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (PyObject_GetBuffer(out, y, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(x);
        return -1;
    }
    if (!scorebuf_is_float32(x) || x->ndim != 2 || x->shape[1] != n_features) {
        PyErr_Format(PyExc_ValueError, "features must be float32 [rows, %d]", (int)n_features);
    } else if (!scorebuf_is_float32(y) || y->ndim != 1 || y->shape[0] != x->shape[0]) {
        PyErr_SetString(PyExc_ValueError, "out must be float32 [rows]");
    } else {
        return 0;
    }
    PyBuffer_Release(y);
    PyBuffer_Release(x);
    return -1;
}

static void scorebuf_release(Py_buffer *x, Py_buffer *y) {
    PyBuffer_Release(y);
    PyBuffer_Release(x);
}

#endif

/* The private CPython calls scorer/native makes, on every Python it supports (3.11 up). From 3.13
 * CPython keeps them in its internal headers: some still exported (declared here as they are
 * there), some no longer (the public API, or what CPython does inside them, in their place).
 * Before 3.13 each name is CPython's own, unchanged. */
#ifndef SCORER_NATIVE_COMPAT_H
#define SCORER_NATIVE_COMPAT_H

#include <Python.h>
#include <string.h>

#if PY_VERSION_HEX >= 0x030D0000
/* Exported from 3.13's internal headers (pycore_modsupport.h, pycore_pyerrors.h, pycore_setobject.h);
 * the argument checks' macros as CPython writes them: the call only when the check fails. */
PyAPI_FUNC(int) _PyArg_CheckPositional(const char *, Py_ssize_t, Py_ssize_t, Py_ssize_t);
#define _PyArg_CheckPositional(funcname, nargs, min, max) \
    (((min) <= (nargs) && (nargs) <= (max)) || _PyArg_CheckPositional((funcname), (nargs), (min), (max)))
PyAPI_FUNC(int) _PyArg_NoKeywords(const char *funcname, PyObject *kwargs);
#define _PyArg_NoKeywords(funcname, kwargs) ((kwargs) == NULL || _PyArg_NoKeywords((funcname), (kwargs)))
PyAPI_FUNC(void) _PyErr_SetKeyError(PyObject *);
PyAPI_FUNC(int) _PySet_NextEntry(PyObject *set, Py_ssize_t *pos, PyObject **key, Py_hash_t *hash);

/* No longer exported: a dict's next item by the public call, its key's hash asked again (a str
 * keeps its hash; a dict's keys are hashable). */
static inline int compat_dict_next(PyObject *d, Py_ssize_t *pos, PyObject **key, PyObject **value,
                                   Py_hash_t *hash) {
    if (!PyDict_Next(d, pos, key, value)) return 0;
    *hash = PyObject_Hash(*key);
    return 1;
}
/* Two exact str equal, as CPython's own unicode_eq: the same length, kind and code units. */
static inline int compat_unicode_eq(PyObject *a, PyObject *b) {
    const Py_ssize_t n = PyUnicode_GET_LENGTH(a);
    return n == PyUnicode_GET_LENGTH(b) && PyUnicode_KIND(a) == PyUnicode_KIND(b)
           && memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)n * PyUnicode_KIND(a)) == 0;
}
#else
#define compat_dict_next _PyDict_Next
#define compat_unicode_eq _PyUnicode_EQ
#endif

#endif

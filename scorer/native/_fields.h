/* What several of scorer/native's extensions share: an event's field read as Python reads it.
 * Static functions in a header (each extension is its own shared object: no symbol is shared
 * between them at link time). */
#ifndef SCORER_NATIVE_FIELDS_H
#define SCORER_NATIVE_FIELDS_H

#include <Python.h>

/* fields.get(name) as a new reference (None when missing); a dict subclass's own get. */
static inline PyObject *get_field(PyObject *fields, PyObject *name) {
    if (!PyDict_CheckExact(fields)) return PyObject_CallMethod(fields, "get", "O", name);
    PyObject *value = PyDict_GetItemWithError(fields, name);
    if (value == NULL) {
        if (PyErr_Occurred()) return NULL;
        value = Py_None;
    }
    Py_INCREF(value);
    return value;
}

#endif

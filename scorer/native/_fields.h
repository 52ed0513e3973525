/* What several of scorer/native's extensions share: an event's field read as Python reads it.
 * Static functions in a header (each extension is its own shared object: no symbol is shared
 * between them at link time). */
#ifndef SCORER_NATIVE_FIELDS_H
#define SCORER_NATIVE_FIELDS_H

#include <Python.h>

#include "_fieldmap.h"

/* fields.get(name) as a new reference (None when missing): a dict's, a FieldMap's through its C API
 * (the extension calls fieldmap_import() when loaded), another mapping's own get. */
static inline PyObject *get_field(PyObject *fields, PyObject *name) {
    if (!PyDict_CheckExact(fields)) {
        if (!is_fieldmap(fields)) return PyObject_CallMethod(fields, "get", "O", name);
        PyObject *value = fieldmap_api->get(fields, name);
        return value != NULL || PyErr_Occurred() ? value : Py_NewRef(Py_None);
    }
    PyObject *value = PyDict_GetItemWithError(fields, name);
    if (value == NULL) {
        if (PyErr_Occurred()) return NULL;
        value = Py_None;
    }
    Py_INCREF(value);
    return value;
}

#endif

/* The C API of scorer.native._fieldmap (FieldMap: a read-only str -> str mapping indexed over a
 * JSON object's bytes) for the other extensions, which read an event's fields without going
 * through Python calls. Each extension is its own shared object: the functions come through a
 * capsule, imported once by fieldmap_import(); where that fails (the module not built)
 * fieldmap_api stays NULL, is_fieldmap() is false everywhere and the consumer keeps its generic
 * path (PyObject_GetItem, .get). */
#ifndef SCORER_NATIVE_FIELDMAP_H
#define SCORER_NATIVE_FIELDMAP_H

#include <Python.h>

#define FIELDMAP_API_VERSION 2
#define FIELDMAP_CAPSULE "scorer.native._fieldmap._C_API"

typedef struct {
    int version; /* FIELDMAP_API_VERSION */
    PyTypeObject *type;
    /* map[key] as a new reference; NULL with no error set when missing (a hashable non-str key is
     * missing), NULL with an error set on failure (an unhashable key: TypeError; MemoryError). */
    PyObject *(*get)(PyObject *map, PyObject *key);
    Py_ssize_t (*size)(PyObject *map);
    PyObject *(*key_at)(PyObject *map, Py_ssize_t i); /* borrowed; 0 <= i < size, document order */
} FieldMapAPI;

static FieldMapAPI *fieldmap_api;

/* Call from the consumer's module init (after that, fieldmap_api is set or NULL for good). Not
 * PyCapsule_Import("scorer.native._fieldmap._C_API"): that walks the name by getattr from
 * "scorer", and scorer.native is no attribute of scorer yet while scorer/native/__init__.py is
 * still loading the extensions (it imports them); importing the module by its full name works
 * then too. */
static inline void fieldmap_import(void) {
    FieldMapAPI *api = NULL;
    PyObject *module = PyImport_ImportModule("scorer.native._fieldmap");
    PyObject *capsule = module == NULL ? NULL : PyObject_GetAttrString(module, "_C_API");
    if (capsule != NULL) api = (FieldMapAPI *)PyCapsule_GetPointer(capsule, FIELDMAP_CAPSULE);
    Py_XDECREF(capsule);
    Py_XDECREF(module);
    if (api == NULL || api->version != FIELDMAP_API_VERSION) {
        PyErr_Clear();
        api = NULL;
    }
    fieldmap_api = api;
}

static inline int is_fieldmap(PyObject *o) { return fieldmap_api != NULL && Py_IS_TYPE(o, fieldmap_api->type); }

#endif

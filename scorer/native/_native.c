/* The per-entity 60 s windows of the netflow and SIEM feature sets, in C.
 *
 * The reference is Python: scorer/features/base.py (EntityState, entity_rows),
 * scorer/features/netflow.py (_SourceWindow) and scorer/features/siem.py (_HostWindow).
 * This module does the very same updates in the very same order with the same Python
 * dicts for the counters (so key equality and hashing are Python's), without a Python
 * frame and a tuple per event: tests/native compares the two on every stream we have.
 *
 * Windows(kind, max_entities, window_s, max_window, max_rules, never_s)
 *   kind 0 (netflow): rows(keys, ts, ports, ips, out) writes [len(ports), len(ips)] per row
 *   kind 1 (SIEM):    rows(keys, ts, rules, None, out) writes the six _HostWindow.add values
 * ``out`` is a C-contiguous float64 buffer of n * width doubles (a numpy array).
 * Entities are least-recently-used bounded like EntityState: a held entity moves to the
 * end, a new one is appended and the oldest evicted when there are more than max_entities.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KIND_NETFLOW 0
#define KIND_SIEM 1

typedef struct {
    double ts;
    PyObject *a; /* netflow: the destination port; SIEM: the rule */
    PyObject *b; /* netflow: the destination IP; SIEM: NULL */
} Entry;

typedef struct Entity {
    struct Entity *prev, *next; /* recency list: head is the least recently touched */
    PyObject *key;
    Entry *ring;
    Py_ssize_t cap, head, len;
    PyObject *c1; /* netflow: ports counter; SIEM: rules counter */
    PyObject *c2; /* netflow: ips counter; SIEM: rule -> last seen ts (insertion ordered) */
} Entity;

typedef struct {
    PyObject_HEAD
    int kind;
    Py_ssize_t max_entities, max_window, max_rules;
    double window, never;
    PyObject *map; /* key -> capsule of its Entity */
    Entity *oldest, *newest;
} Windows;

static const char *CAPSULE = "scorer.native.Entity";

static void entity_free(Entity *e) {
    for (Py_ssize_t i = 0; i < e->len; i++) {
        Entry *x = &e->ring[(e->head + i) % e->cap];
        Py_XDECREF(x->a);
        Py_XDECREF(x->b);
    }
    PyMem_Free(e->ring);
    Py_XDECREF(e->c1);
    Py_XDECREF(e->c2);
    Py_XDECREF(e->key);
    PyMem_Free(e);
}

static void capsule_free(PyObject *capsule) {
    Entity *e = (Entity *)PyCapsule_GetPointer(capsule, CAPSULE);
    if (e != NULL) entity_free(e);
}

static void unlink_entity(Windows *w, Entity *e) {
    if (e->prev) e->prev->next = e->next; else w->oldest = e->next;
    if (e->next) e->next->prev = e->prev; else w->newest = e->prev;
    e->prev = e->next = NULL;
}

static void append_entity(Windows *w, Entity *e) {
    e->prev = w->newest;
    e->next = NULL;
    if (w->newest) w->newest->next = e; else w->oldest = e;
    w->newest = e;
}

/* EntityState.get: the key's entity, touched (moved to the end) or created (oldest evicted). */
static Entity *get_entity(Windows *w, PyObject *key) {
    PyObject *capsule = PyDict_GetItemWithError(w->map, key);
    if (capsule != NULL) {
        Entity *e = (Entity *)PyCapsule_GetPointer(capsule, CAPSULE);
        if (e != NULL && e != w->newest) {
            unlink_entity(w, e);
            append_entity(w, e);
        }
        return e;
    }
    if (PyErr_Occurred()) return NULL;
    Entity *e = PyMem_Calloc(1, sizeof(Entity));
    if (e == NULL) { PyErr_NoMemory(); return NULL; }
    e->cap = 8;
    e->ring = PyMem_Calloc((size_t)e->cap, sizeof(Entry));
    e->c1 = PyDict_New();
    e->c2 = PyDict_New();
    Py_INCREF(key);
    e->key = key;
    if (e->ring == NULL || e->c1 == NULL || e->c2 == NULL) {
        entity_free(e);
        PyErr_NoMemory();
        return NULL;
    }
    capsule = PyCapsule_New(e, CAPSULE, capsule_free);
    if (capsule == NULL) { entity_free(e); return NULL; }
    int rc = PyDict_SetItem(w->map, key, capsule);
    Py_DECREF(capsule); /* the dict holds it now (or it freed e on failure) */
    if (rc < 0) return NULL;
    append_entity(w, e);
    if (PyDict_GET_SIZE(w->map) > w->max_entities) {
        /* popitem(last=False): never the new entity, max_entities >= 1 (see Windows_init). */
        PyObject *old_key = w->oldest->key;
        unlink_entity(w, w->oldest);
        Py_INCREF(old_key);
        rc = PyDict_DelItem(w->map, old_key);
        Py_DECREF(old_key);
        if (rc < 0) return NULL;
    }
    return e;
}

/* counter[key] += 1; the new count (-1 on error). */
static Py_ssize_t count_up(PyObject *counter, PyObject *key) {
    PyObject *old = PyDict_GetItemWithError(counter, key);
    Py_ssize_t n = 1;
    if (old != NULL) {
        n = PyLong_AsSsize_t(old) + 1;
        if (n == 0 && PyErr_Occurred()) return -1;
    } else if (PyErr_Occurred()) {
        return -1;
    }
    PyObject *value = PyLong_FromSsize_t(n);
    if (value == NULL) return -1;
    int rc = PyDict_SetItem(counter, key, value);
    Py_DECREF(value);
    return rc < 0 ? -1 : n;
}

/* counter[key] -= 1, deleted at zero (as the reference's _drop and _HostWindow.add). */
static int count_down(PyObject *counter, PyObject *key) {
    PyObject *old = PyDict_GetItemWithError(counter, key);
    if (old == NULL) {
        /* Counter reads a missing key as 0: -1, then deleted; i.e. nothing stays. */
        return PyErr_Occurred() ? -1 : 0;
    }
    Py_ssize_t left = PyLong_AsSsize_t(old) - 1;
    if (left == -2 && PyErr_Occurred()) return -1;
    if (left <= 0) return PyDict_DelItem(counter, key);
    PyObject *value = PyLong_FromSsize_t(left);
    if (value == NULL) return -1;
    int rc = PyDict_SetItem(counter, key, value);
    Py_DECREF(value);
    return rc;
}

/* Drop the oldest entry of the ring (its references go to the caller). */
static Entry pop_oldest(Entity *e) {
    Entry x = e->ring[e->head];
    e->ring[e->head].a = e->ring[e->head].b = NULL;
    e->head = (e->head + 1) % e->cap;
    e->len--;
    return x;
}

static int push(Entity *e, double ts, PyObject *a, PyObject *b) {
    if (e->len == e->cap) {
        Py_ssize_t cap = e->cap * 2;
        Entry *ring = PyMem_Calloc((size_t)cap, sizeof(Entry));
        if (ring == NULL) { PyErr_NoMemory(); return -1; }
        for (Py_ssize_t i = 0; i < e->len; i++) ring[i] = e->ring[(e->head + i) % e->cap];
        PyMem_Free(e->ring);
        e->ring = ring;
        e->cap = cap;
        e->head = 0;
    }
    Entry *x = &e->ring[(e->head + e->len) % e->cap];
    x->ts = ts;
    Py_INCREF(a);
    x->a = a;
    Py_XINCREF(b);
    x->b = b;
    e->len++;
    return 0;
}

/* _SourceWindow.add */
static int netflow_add(Windows *w, Entity *e, double ts, PyObject *port, PyObject *ip, double *row) {
    while (e->len && (e->ring[e->head].ts < ts - w->window || e->len >= w->max_window)) {
        Entry old = pop_oldest(e);
        int rc = count_down(e->c1, old.a);
        if (rc == 0) rc = count_down(e->c2, old.b);
        Py_DECREF(old.a);
        Py_XDECREF(old.b);
        if (rc < 0) return -1;
    }
    if (push(e, ts, port, ip) < 0) return -1;
    if (count_up(e->c1, port) < 0 || count_up(e->c2, ip) < 0) return -1;
    row[0] = (double)PyDict_GET_SIZE(e->c1);
    row[1] = (double)PyDict_GET_SIZE(e->c2);
    return 0;
}

/* _HostWindow.add: Python's max(a, b) is b only when b > a; min(a, b) is b only when b < a. */
static int siem_add(Windows *w, Entity *e, double ts, PyObject *rule, double *row) {
    PyObject *rules = e->c1, *last_seen = e->c2;
    while (e->len && (e->ring[e->head].ts < ts - w->window || e->len >= w->max_window)) {
        Entry old = pop_oldest(e);
        int rc = count_down(rules, old.a);
        Py_DECREF(old.a);
        if (rc < 0) return -1;
    }
    PyObject *prev_obj = PyDict_GetItemWithError(last_seen, rule);
    if (prev_obj == NULL && PyErr_Occurred()) return -1;
    int first = prev_obj == NULL;
    double previous = first ? 0.0 : PyFloat_AsDouble(prev_obj);
    if (!first && previous == -1.0 && PyErr_Occurred()) return -1;
    if (first && PyDict_GET_SIZE(last_seen) >= w->max_rules) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        if (PyDict_Next(last_seen, &pos, &k, &v)) { /* the oldest inserted rule goes */
            Py_INCREF(k);
            int rc = PyDict_DelItem(last_seen, k);
            Py_DECREF(k);
            if (rc < 0) return -1;
        }
    }
    double seen = first ? ts : (ts > previous ? ts : previous);
    PyObject *seen_obj = PyFloat_FromDouble(seen);
    if (seen_obj == NULL) return -1;
    int rc = PyDict_SetItem(last_seen, rule, seen_obj);
    Py_DECREF(seen_obj);
    if (rc < 0 || push(e, ts, rule, NULL) < 0) return -1;
    Py_ssize_t same = count_up(rules, rule);
    if (same < 0) return -1;
    double since = w->never;
    if (!first) {
        double d = ts - previous;
        d = 0.0 > d ? 0.0 : d;
        since = w->never < d ? w->never : d;
    }
    Py_ssize_t total = e->len;
    row[0] = log1p((double)same);
    row[1] = log1p((double)total);
    row[2] = log1p((double)PyDict_GET_SIZE(rules));
    row[3] = first ? 1.0 : 0.0;
    row[4] = log1p(since);
    row[5] = (double)same / (double)total;
    return 0;
}

static PyObject *Windows_rows(Windows *w, PyObject *args) {
    PyObject *keys, *ts, *a, *b, *out;
    if (!PyArg_ParseTuple(args, "O!O!O!OO", &PyList_Type, &keys, &PyList_Type, &ts, &PyList_Type, &a, &b, &out))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(keys);
    Py_ssize_t width = w->kind == KIND_NETFLOW ? 2 : 6;
    if (PyList_GET_SIZE(ts) != n || PyList_GET_SIZE(a) != n) {
        PyErr_SetString(PyExc_ValueError, "rows: columns of different lengths");
        return NULL;
    }
    if (w->kind == KIND_NETFLOW && (!PyList_Check(b) || PyList_GET_SIZE(b) != n)) {
        PyErr_SetString(PyExc_ValueError, "rows: netflow needs the IP column");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(out, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (view.len != (Py_ssize_t)(n * width * sizeof(double)) || view.format == NULL || strcmp(view.format, "d") != 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "rows: out must be float64 [n, width], C-contiguous");
        return NULL;
    }
    double *rows = (double *)view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        double t = PyFloat_AsDouble(PyList_GET_ITEM(ts, i));
        if (t == -1.0 && PyErr_Occurred()) goto fail;
        Entity *e = get_entity(w, PyList_GET_ITEM(keys, i));
        if (e == NULL) goto fail;
        int rc = w->kind == KIND_NETFLOW
            ? netflow_add(w, e, t, PyList_GET_ITEM(a, i), PyList_GET_ITEM(b, i), rows + i * width)
            : siem_add(w, e, t, PyList_GET_ITEM(a, i), rows + i * width);
        if (rc < 0) goto fail;
    }
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
fail:
    PyBuffer_Release(&view);
    return NULL;
}

static PyObject *Windows_clear(Windows *w, PyObject *Py_UNUSED(ignored)) {
    w->oldest = w->newest = NULL;
    PyDict_Clear(w->map);
    Py_RETURN_NONE;
}

static Py_ssize_t Windows_len(Windows *w) { return PyDict_GET_SIZE(w->map); }

static int Windows_init(Windows *w, PyObject *args, PyObject *kwds) {
    static char *names[] = {"kind", "max_entities", "window_s", "max_window", "max_rules", "never_s", NULL};
    int kind;
    Py_ssize_t max_entities, max_window, max_rules = 1;
    double window, never = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "indn|nd", names, &kind, &max_entities, &window, &max_window,
                                     &max_rules, &never))
        return -1;
    if ((kind != KIND_NETFLOW && kind != KIND_SIEM) || max_entities < 1 || max_window < 1 || max_rules < 1) {
        PyErr_SetString(PyExc_ValueError, "Windows: kind 0 or 1, bounds >= 1");
        return -1;
    }
    w->kind = kind;
    w->max_entities = max_entities;
    w->window = window;
    w->max_window = max_window;
    w->max_rules = max_rules;
    w->never = never;
    w->oldest = w->newest = NULL;
    Py_XSETREF(w->map, PyDict_New());
    return w->map == NULL ? -1 : 0;
}

static void Windows_dealloc(Windows *w) {
    Py_XDECREF(w->map);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static PyMethodDef Windows_methods[] = {
    {"rows", (PyCFunction)Windows_rows, METH_VARARGS, "Update the entities in order; write each row's values to out."},
    {"clear", (PyCFunction)Windows_clear, METH_NOARGS, "Forget every entity."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Windows_as_sequence = {.sq_length = (lenfunc)Windows_len};

static PyTypeObject WindowsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scorer.native._native.Windows",
    .tp_basicsize = sizeof(Windows),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Bounded per-entity sliding windows (netflow sources, SIEM hosts).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Windows_init,
    .tp_dealloc = (destructor)Windows_dealloc,
    .tp_methods = Windows_methods,
    .tp_as_sequence = &Windows_as_sequence,
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "Native parts of the scorer's hot path.", -1, NULL};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&WindowsType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&WindowsType);
    if (PyModule_AddObject(m, "Windows", (PyObject *)&WindowsType) < 0) {
        Py_DECREF(&WindowsType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

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
 * ``out`` is a C-contiguous float64 buffer of n * width doubles (a numpy array); with a last
 * argument ``col``, a C-contiguous float64 matrix [n, >= col + width] (a feature set's whole
 * matrix) whose columns col.. each row's values go to.
 * Entities are least-recently-used bounded like EntityState: a held entity moves to the
 * end, a new one is appended and the oldest evicted when there are more than max_entities.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "_murmur2.h" /* Kafka's default partitioner's hash */
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
    Py_ssize_t col = -1;
    if (!PyArg_ParseTuple(args, "O!O!O!OO|n", &PyList_Type, &keys, &PyList_Type, &ts, &PyList_Type, &a, &b, &out,
                          &col))
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
    if (PyObject_GetBuffer(out, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) < 0) return NULL;
    /* Without col, out is the rows themselves; with it, a matrix whose columns col.. they go to. */
    Py_ssize_t stride = col < 0 ? width : view.ndim == 2 ? view.shape[1] : -1;
    if (view.format == NULL || strcmp(view.format, "d") != 0 ||
        (col < 0 ? view.len != (Py_ssize_t)(n * width * sizeof(double))
                 : view.ndim != 2 || view.shape[0] != n || col + width > stride)) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "rows: out must be float64 [n, width] (or [n, col + width or more] with col), "
                                          "C-contiguous");
        return NULL;
    }
    double *rows = (double *)view.buf + (col < 0 ? 0 : col);
    for (Py_ssize_t i = 0; i < n; i++) {
        double t = PyFloat_AsDouble(PyList_GET_ITEM(ts, i));
        if (t == -1.0 && PyErr_Occurred()) goto fail;
        Entity *e = get_entity(w, PyList_GET_ITEM(keys, i));
        if (e == NULL) goto fail;
        int rc = w->kind == KIND_NETFLOW
            ? netflow_add(w, e, t, PyList_GET_ITEM(a, i), PyList_GET_ITEM(b, i), rows + i * stride)
            : siem_add(w, e, t, PyList_GET_ITEM(a, i), rows + i * stride);
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

/* Both types: plain objects made by PyType_GenericNew, set up by NAME_init, freed by
   NAME_dealloc, with the methods NAME_methods; anything else a type has goes in the rest. */
#define NATIVE_TYPE(NAME, DOC, ...)                          \
    static PyTypeObject NAME##Type = {                       \
        PyVarObject_HEAD_INIT(NULL, 0)                       \
        .tp_name = "scorer.native._native." #NAME,           \
        .tp_basicsize = sizeof(NAME),                        \
        .tp_flags = Py_TPFLAGS_DEFAULT,                      \
        .tp_doc = DOC,                                       \
        .tp_new = PyType_GenericNew,                         \
        .tp_init = (initproc)NAME##_init,                    \
        .tp_dealloc = (destructor)NAME##_dealloc,            \
        .tp_methods = NAME##_methods,                        \
        __VA_ARGS__                                          \
    }

static PyMethodDef Windows_methods[] = {
    {"rows", (PyCFunction)Windows_rows, METH_VARARGS, "Update the entities in order; write each row's values to out."},
    {"clear", (PyCFunction)Windows_clear, METH_NOARGS, "Forget every entity."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods Windows_as_sequence = {.sq_length = (lenfunc)Windows_len};

NATIVE_TYPE(Windows, "Bounded per-entity sliding windows (netflow sources, SIEM hosts).",
            .tp_as_sequence = &Windows_as_sequence);

/* ---- CICFlowMeter statistics kept raw (msgspec.Raw), checked and read here ----------
 *
 * The reference is msgspec decoding the object into scorer.events.columnar.FlowStats (the
 * statistic names as fields, float values, unknown names refused). This scanner answers
 * only the common case and says "unsure" (0) for everything else, which then goes to that
 * reference: an escape, a control or non-ASCII byte in a name, a name not in the list, a
 * value that is not a JSON number, a number it does not read exactly (more than 15
 * significant digits in an integer, magnitudes near the double range). So it never accepts
 * what msgspec refuses, and every value it reads is the double msgspec reads.
 *
 * Stats(names, keep=(), texts=(), missing=(), max_text=0, blank_ok=-1, lower=-1):
 * check(raws) -> bytes (1: the reference accepts it, 0: unsure),
 * reading the ``keep`` statistics (name indices) of the batch on the way for columns();
 * columns(raws, wanted, out) -> the rows it was unsure of; writes the wanted statistics
 * (indices into names) of the other rows to out [n, len(wanted)] (0.0 when absent, the
 * last value when a name repeats, as msgspec). cut(values): see Stats_cut.
 */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    PyObject *names; /* tuple of bytes, kept alive: ptrs/lens point into it */
    const char **ptrs;
    Py_ssize_t *lens;
    /* The statistics check() reads on the way (``keep``) for the last batch it checked, so
       that columns() of the same raw objects copies them instead of scanning again. The
       batch's list is held: its objects stay alive, so a pointer found in the table is the
       very object checked (and a Raw never changes). */
    Py_ssize_t nkeep;
    Py_ssize_t *keep;     /* name indices, in column order */
    int *keep_col;        /* per name: its column in kept, or -1 */
    PyObject *kept_list;  /* the raws of the last check() */
    double *kept;         /* [len(kept_list), nkeep] */
    PyObject **table;     /* open addressing: raw object -> its row in kept */
    Py_ssize_t *table_row;
    Py_ssize_t table_cap; /* a power of two, or 0 */
    /* cut()'s look at the record's own texts: the members (``texts``, bytes), the values
       none may be (``missing``), the longest (``max_text`` bytes), which one may be "" and
       which must be lower case (indices into texts, or -1). */
    PyObject *texts;
    PyObject *missing;
    Py_ssize_t max_text, blank_ok, lower;
    /* Per name i, ',"NAME":' at seps + sep_at[i] (lens[i] + 4 bytes; 16 bytes of padding after
       the last, for same()'s loads). */
    char *seps;
    Py_ssize_t *sep_at;
    Py_ssize_t missing_max; /* the longest of missing */
} Stats;

static size_t slot_of(PyObject *o, Py_ssize_t cap) {
    uintptr_t x = (uintptr_t)o >> 4;
    return (size_t)((x * (uintptr_t)0x9E3779B97F4A7C15u) >> 7) & (size_t)(cap - 1);
}

static void forget_batch(Stats *s) {
    Py_CLEAR(s->kept_list);
    PyMem_Free(s->kept);
    PyMem_Free(s->table);
    PyMem_Free(s->table_row);
    s->kept = NULL;
    s->table = NULL;
    s->table_row = NULL;
    s->table_cap = 0;
}

static Py_ssize_t kept_row(Stats *s, PyObject *raw) {
    if (s->table_cap == 0) return -1;
    for (size_t i = slot_of(raw, s->table_cap);; i = (i + 1) & (size_t)(s->table_cap - 1)) {
        if (s->table[i] == raw) return s->table_row[i];
        if (s->table[i] == NULL) return -1;
    }
}

static const double POW10[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#define IS_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')

/* Whether a[0..len) == b[0..len), for the short names of statistics and fields (both
   readable for len bytes): two overlapping loads of each side for up to 32 bytes (a name and
   its quotes, colon and comma) instead of a call to memcmp or a loop of its own. */
static inline int same(const char *a, const char *b, size_t len) {
    if (len >= 16 && len <= 32) {
#if defined(__SSE2__)
        __m128i head = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)a), _mm_loadu_si128((const __m128i *)b));
        __m128i tail = _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(a + len - 16)),
                                      _mm_loadu_si128((const __m128i *)(b + len - 16)));
        return _mm_movemask_epi8(_mm_and_si128(head, tail)) == 0xFFFF;
#endif
    }
    if (len >= 8 && len <= 16) {
        uint64_t x0, y0, x1, y1;
        memcpy(&x0, a, 8);
        memcpy(&y0, b, 8);
        memcpy(&x1, a + len - 8, 8);
        memcpy(&y1, b + len - 8, 8);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (len >= 4 && len < 8) {
        uint32_t x0, y0, x1, y1;
        memcpy(&x0, a, 4);
        memcpy(&y0, b, 4);
        memcpy(&x1, a + len - 4, 4);
        memcpy(&y1, b + len - 4, 4);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    return memcmp(a, b, len) == 0;
}

static int number(const char *p, const char **next, double *value);

/* Whether p starts a JSON number (as number() reads it, value aside: 1 exactly where
   number(p, next, NULL) is 1), and where it ends: the common short forms here, the rest by
   number(). */
static inline int skip_number(const char *p, const char **next) {
    const char *q = p + (*p == '-');
    if (*q == '0') {
        q++;
        if (IS_DIGIT(*q)) return 0;
    } else if (IS_DIGIT(*q)) {
        do q++; while (IS_DIGIT(*q));
    } else {
        return 0;
    }
    if (*q == '.') {
        q++;
        if (!IS_DIGIT(*q)) return 0;
        do q++; while (IS_DIGIT(*q));
    }
    if (*q == 'e' || *q == 'E' || q - p > 300) return number(p, next, NULL); /* its magnitude checks */
    *next = q;
    return 1;
}

/* One JSON number at p. The object's closing '}' lies before end (scan() checks it first),
   so the loops below stop at it without a bounds check of their own. Sets *next; with
   value != NULL also reads it. 1: fine, 0: unsure. */
static int number(const char *p, const char **next, double *value) {
    const char *start = p;
    int negative = *p == '-';
    p += negative;
    const char *int_start = p;
    if (*p == '0') {
        p++;
        if (IS_DIGIT(*p)) return 0; /* leading zero: malformed, the reference says */
    } else if (IS_DIGIT(*p)) {
        while (IS_DIGIT(*p)) p++;
    } else {
        return 0;
    }
    const char *int_end = p, *frac_start = p, *frac_end = p;
    int is_int = 1;
    if (*p == '.') {
        is_int = 0;
        frac_start = ++p;
        if (!IS_DIGIT(*p)) return 0;
        while (IS_DIGIT(*p)) p++;
        frac_end = p;
    }
    long exp = 0;
    if (*p == 'e' || *p == 'E') {
        is_int = 0;
        p++;
        int exp_negative = *p == '-';
        if (*p == '+' || *p == '-') p++;
        const char *exp_start = p;
        while (IS_DIGIT(*p)) {
            exp = exp * 10 + (*p - '0');
            p++;
        }
        if (p == exp_start || p - exp_start > 4) return 0;
        if (exp_negative) exp = -exp;
    }
    Py_ssize_t int_digits = *int_start == '0' ? 0 : int_end - int_start;
    /* Far from the double range only: 10^(int_digits + exp) stays below 1e300. */
    if (int_digits + exp > 300 || int_digits + (frac_end - frac_start) > 400) return 0;
    *next = p;
    if (value == NULL) return 1;
    /* The significant digits (leading zeros left out) as an integer m, and how many of
       them are fraction digits: the value is m * 10^(exp - fraction digits). */
    uint64_t m = 0;
    int sig = 0;
    long dropped = 0;
    for (const char *d = int_start; d < int_end; d++) {
        if (sig == 0 && *d == '0') continue;
        if (++sig <= 19) m = m * 10 + (uint64_t)(*d - '0');
    }
    for (const char *d = frac_start; d < frac_end; d++) {
        if (sig == 0 && *d == '0') { dropped++; continue; }
        if (++sig <= 19) { m = m * 10 + (uint64_t)(*d - '0'); dropped++; }
    }
    /* m exact (at most 19 digits read) and an exact double (at most 2**53): */
    int exact = sig <= 19 && m <= ((uint64_t)1 << 53);
    double v;
    if (is_int) {
        if (!exact) return 0; /* an integer the reference reads through its own path */
        v = (double)m;          /* -0 is the integer 0: 0.0, as msgspec */
        *value = negative && m != 0 ? -v : v;
        return 1;
    }
    long e10 = exp - dropped;
    if (exact && e10 >= -22 && e10 <= 22) {
        /* m and 10^|e10| are exact doubles: one correctly rounded operation (Clinger). */
        v = e10 >= 0 ? (double)m * POW10[e10] : (double)m / POW10[-e10];
        *value = negative ? -v : v;
        return 1;
    }
    char buf[64];
    Py_ssize_t len = p - start;
    if (len >= (Py_ssize_t)sizeof(buf)) return 0;
    memcpy(buf, start, (size_t)len);
    buf[len] = '\0';
    char *stop = NULL;
    v = PyOS_string_to_double(buf, &stop, NULL); /* correctly rounded (dtoa.c) */
    if (v == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    if (stop != buf + len || !isfinite(v)) return 0;
    *value = v;
    return 1;
}

/* One statistics object. wanted_col[i]: the out column of name i, or -1. 1 fine, 0 unsure.
   stop NULL: the object is all of p..end; else it starts at p, may be followed by more
   (end[-1] is still a '}', the enclosing record's), and *stop is set just after it. */
static int scan(Stats *s, const char *p, const char *end, const int *wanted_col, double *row, const char **stop) {
    while (p < end && IS_WS(*p)) p++;
    while (end > p && IS_WS(end[-1])) end--;
    /* From here on every loop stops at the closing '}' (end[-1]) at the latest. */
    if (end - p < 2 || *p != '{' || end[-1] != '}') return 0;
    p++;
    while (IS_WS(*p)) p++;
    if (*p == '}') return stop ? (*stop = p + 1, 1) : p + 1 == end;
    Py_ssize_t expected = 0;
    for (;;) {
        if (*p != '"') return 0;
        const char *key = ++p;
        /* A name is read as the bytes up to the next quote and must equal a statistic's
           name, which has no escape, control or non-ASCII byte (Stats_init checks): a name
           that has one (or whose quote is escaped) equals none and is left to the
           reference. Names usually come in the list's order: the expected one goes first. */
        Py_ssize_t idx = -1;
        if (expected < s->n) {
            Py_ssize_t len = s->lens[expected];
            if (end - key > len && key[len] == '"' && same(s->ptrs[expected], key, (size_t)len)) {
                idx = expected;
                p = key + len;
            }
        }
        if (idx < 0) {
            const char *quote = memchr(key, '"', (size_t)(end - key));
            if (quote == NULL) return 0;
            Py_ssize_t klen = quote - key;
            for (Py_ssize_t i = 0; i < s->n; i++) {
                if (s->lens[i] == klen && memcmp(s->ptrs[i], key, (size_t)klen) == 0) { idx = i; break; }
            }
            if (idx < 0) return 0; /* not a statistic: the reference refuses it */
            p = quote;
        }
        p++;
        while (IS_WS(*p)) p++;
        if (*p != ':') return 0;
        p++;
        while (IS_WS(*p)) p++;
        for (;;) {
            int col = wanted_col ? wanted_col[idx] : -1;
            if (col >= 0 ? !number(p, &p, &row[col]) : !skip_number(p, &p)) return 0;
            /* The common case next: no whitespace and the list's next name, ',"NAME":' in one
               comparison (what the general path below reads the same way). */
            expected = idx + 1;
            if (expected >= s->n) break;
            Py_ssize_t len = s->lens[expected] + 4;
            if (end - p <= len || !same(s->seps + s->sep_at[expected], p, (size_t)len)) break;
            p += len;
            idx = expected;
        }
        while (IS_WS(*p)) p++;
        if (*p == ',') {
            p++;
            while (IS_WS(*p)) p++;
            continue;
        }
        if (*p == '}') return stop ? (*stop = p + 1, 1) : p + 1 == end; /* the object's end */
        return 0;
    }
}

static PyObject *Stats_check(Stats *s, PyObject *raws) {
    if (!PyList_Check(raws)) { PyErr_SetString(PyExc_TypeError, "check: a list"); return NULL; }
    Py_ssize_t n = PyList_GET_SIZE(raws);
    PyObject *out = PyBytes_FromStringAndSize(NULL, n);
    if (out == NULL) return NULL;
    char *flags = PyBytes_AS_STRING(out);
    forget_batch(s);
    Py_ssize_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    if (s->nkeep > 0 && n > 0) {
        s->kept = PyMem_Calloc((size_t)(n * s->nkeep), sizeof(double));
        s->table = PyMem_Calloc((size_t)cap, sizeof(PyObject *));
        s->table_row = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)cap);
        if (s->kept == NULL || s->table == NULL || s->table_row == NULL) {
            forget_batch(s);
            Py_DECREF(out);
            return PyErr_NoMemory();
        }
        s->table_cap = cap;
        Py_INCREF(raws);
        s->kept_list = raws;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *raw = PyList_GET_ITEM(raws, i);
        Py_buffer b;
        if (PyObject_GetBuffer(raw, &b, PyBUF_SIMPLE) < 0) { forget_batch(s); Py_DECREF(out); return NULL; }
        double *row = s->kept ? s->kept + i * s->nkeep : NULL;
        flags[i] = (char)scan(s, b.buf, (const char *)b.buf + b.len, row ? s->keep_col : NULL, row, NULL);
        PyBuffer_Release(&b);
        if (flags[i] && s->table_cap) { /* remembered only when read whole and sure */
            size_t j = slot_of(raw, s->table_cap);
            while (s->table[j] != NULL && s->table[j] != raw) j = (j + 1) & (size_t)(s->table_cap - 1);
            s->table[j] = raw;
            s->table_row[j] = i;
        }
    }
    return out;
}

static PyObject *Stats_columns(Stats *s, PyObject *args) {
    PyObject *raws, *wanted, *out;
    if (!PyArg_ParseTuple(args, "O!O!O", &PyList_Type, &raws, &PyTuple_Type, &wanted, &out)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(raws), k = PyTuple_GET_SIZE(wanted);
    int *cols = PyMem_Malloc(sizeof(int) * (size_t)(s->n ? s->n : 1));
    if (cols == NULL) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < s->n; i++) cols[i] = -1;
    for (Py_ssize_t j = 0; j < k; j++) {
        Py_ssize_t idx = PyLong_AsSsize_t(PyTuple_GET_ITEM(wanted, j));
        if (idx < 0 || idx >= s->n) {
            PyMem_Free(cols);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_IndexError, "columns: a statistic index out of range");
            return NULL;
        }
        cols[idx] = (int)j;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(out, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyMem_Free(cols);
        return NULL;
    }
    PyObject *unsure = NULL;
    if (view.len != (Py_ssize_t)(n * k * sizeof(double)) || view.format == NULL || strcmp(view.format, "d") != 0) {
        PyErr_SetString(PyExc_ValueError, "columns: out must be float64 [n, len(wanted)], C-contiguous");
        goto done;
    }
    unsure = PyList_New(0);
    if (unsure == NULL) goto done;
    double *rows = view.buf;
    int cached = s->table_cap > 0 && k == s->nkeep;
    for (Py_ssize_t j = 0; cached && j < k; j++) cached = PyLong_AsSsize_t(PyTuple_GET_ITEM(wanted, j)) == s->keep[j];
    for (Py_ssize_t i = 0; i < n; i++) {
        double *row = rows + i * k;
        if (cached) {
            Py_ssize_t at = kept_row(s, PyList_GET_ITEM(raws, i));
            if (at >= 0) {
                memcpy(row, s->kept + at * k, sizeof(double) * (size_t)k);
                continue;
            }
        }
        for (Py_ssize_t j = 0; j < k; j++) row[j] = 0.0;
        Py_buffer b;
        if (PyObject_GetBuffer(PyList_GET_ITEM(raws, i), &b, PyBUF_SIMPLE) < 0) { Py_CLEAR(unsure); goto done; }
        int ok = scan(s, b.buf, (const char *)b.buf + b.len, cols, row, NULL);
        PyBuffer_Release(&b);
        if (!ok) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index == NULL || PyList_Append(unsure, index) < 0) { Py_XDECREF(index); Py_CLEAR(unsure); goto done; }
            Py_DECREF(index);
        }
    }
done:
    PyBuffer_Release(&view);
    PyMem_Free(cols);
    return unsure;
}

/* ---- Flow records with their statistics cut out (Stats.cut) -------------------------
 *
 * msgspec validates a Raw value by skipping it, which costs more than scan() reading it.
 * cut(values) -> list: per value, a copy of the record with its top-level "extra" object
 * replaced by a JSON string, the base64 of the ``keep`` statistics as float64 (keep's
 * order; msgspec decodes it into bytes), or None where the record is left whole: not
 * bytes, not an object, no or two "extra" members, a key with an escape (it may spell
 * "extra"), an object or array as another member's value, statistics scan() is unsure of.
 * Only the extra member's value changes, and it was an object FlowStats accepts, so the
 * copy decodes exactly when the record does (with extra as msgspec.Raw), into the same
 * values; everything else in it (malformed or not) is left for msgspec to judge.
 */
static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const unsigned char *in, Py_ssize_t n, char *out) {
    Py_ssize_t i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *out++ = B64[v >> 18];
        *out++ = B64[(v >> 12) & 63];
        *out++ = B64[(v >> 6) & 63];
        *out++ = B64[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)in[i] << 16 | (i + 1 < n ? (unsigned)in[i + 1] << 8 : 0);
        *out++ = B64[v >> 18];
        *out++ = B64[(v >> 12) & 63];
        *out++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    return out;
}

/* The closing quote of the string whose content starts at p (a quote preceded by an odd
   number of backslashes is escaped), or NULL. */
static const char *string_end(const char *p, const char *end) {
    for (;;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        if (q == NULL) return NULL;
        const char *b = q;
        while (b > p && b[-1] == '\\') b--;
        if ((q - b) % 2 == 0) return q;
        p = q + 1;
    }
}

/* Whether the member key..key_end of a record, valued v..v_end (its JSON text), passes the
   columnar path's text checks (scorer.events.column_checks.checked_flows): not a text member,
   null, or a string without escapes that is none of ``missing``, at most ``max_text`` bytes
   (characters <= bytes) and, for ``lower``, ASCII with a lower-case letter and no upper-case
   one (str.islower). 0 is "look in Python", never a refusal. */
static int text_clean(Stats *s, const char *key, Py_ssize_t klen, const char *v, const char *v_end) {
    Py_ssize_t n = s->texts ? PyTuple_GET_SIZE(s->texts) : 0, which = -1;
    for (Py_ssize_t i = 0; i < n && which < 0; i++) {
        PyObject *name = PyTuple_GET_ITEM(s->texts, i);
        if (PyBytes_GET_SIZE(name) == klen && memcmp(PyBytes_AS_STRING(name), key, (size_t)klen) == 0) which = i;
    }
    if (which < 0) return 1;
    if (v_end - v == 4 && memcmp(v, "null", 4) == 0) return 1;
    if (*v != '"') return 0;
    const char *t = v + 1;
    Py_ssize_t len = v_end - 1 - t;
    if (len > s->max_text || memchr(t, '\\', (size_t)len) != NULL) return 0;
    if (len == 0 && which == s->blank_ok) return 1;
    for (Py_ssize_t i = 0; s->missing && i < PyTuple_GET_SIZE(s->missing); i++) {
        PyObject *m = PyTuple_GET_ITEM(s->missing, i);
        if (PyBytes_GET_SIZE(m) == len && memcmp(PyBytes_AS_STRING(m), t, (size_t)len) == 0) return 0;
    }
    if (which == s->lower) {
        int cased = 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)t[i];
            if (c >= 0x80 || (c >= 'A' && c <= 'Z')) return 0;
            cased |= c >= 'a' && c <= 'z';
        }
        return cased;
    }
    return 1;
}

/* Where the top-level "extra" object of the record p..end is (*from, *to), its kept
   statistics read into kept; *clean &= text_clean() of every other member. 1: found once
   and sure of, 0: leave the record whole. */
static int find_extra(Stats *s, const char *p, const char *end, double *kept, const char **from, const char **to,
                      int *clean) {
    while (p < end && IS_WS(*p)) p++;
    while (end > p && IS_WS(end[-1])) end--;
    /* As in scan(): every loop below stops at the closing '}' (end[-1]) at the latest. */
    if (end - p < 2 || *p != '{' || end[-1] != '}') return 0;
    p++;
    int found = 0;
    for (;;) {
        while (IS_WS(*p)) p++;
        if (*p != '"') return 0;
        const char *key = p + 1, *quote = string_end(key, end);
        if (quote == NULL || memchr(key, '\\', (size_t)(quote - key)) != NULL) return 0;
        int extra = quote - key == 5 && memcmp(key, "extra", 5) == 0;
        Py_ssize_t klen = quote - key;
        p = quote + 1;
        while (IS_WS(*p)) p++;
        if (*p != ':') return 0;
        p++;
        while (IS_WS(*p)) p++;
        if (extra) {
            if (found) return 0;
            found = 1;
            *from = p;
            for (Py_ssize_t j = 0; j < s->nkeep; j++) kept[j] = 0.0;
            if (!scan(s, p, end, s->keep_col, kept, &p)) return 0;
            *to = p;
        } else if (*p == '"') {
            const char *close = string_end(p + 1, end);
            if (close == NULL) return 0;
            *clean = *clean && text_clean(s, key, klen, p, close + 1);
            p = close + 1;
        } else if (*p == '{' || *p == '[') {
            return 0;
        } else { /* a number or literal: msgspec judges it */
            const char *v = p;
            while (*p != ',' && *p != '}' && !IS_WS(*p)) p++;
            *clean = *clean && text_clean(s, key, klen, v, p);
        }
        while (IS_WS(*p)) p++;
        if (*p == '}') return found && p + 1 == end;
        if (*p != ',') return 0;
        p++;
    }
}

/* cut(values) -> (copies, clean): per flow record a copy with its statistics cut to the kept
   ones, or None (left whole); clean: whether every record cut passed text_clean(). */
static PyObject *Stats_cut(Stats *s, PyObject *values) {
    if (!PyList_Check(values)) { PyErr_SetString(PyExc_TypeError, "cut: a list"); return NULL; }
    int clean = 1;
    Py_ssize_t n = PyList_GET_SIZE(values), packed = s->nkeep * (Py_ssize_t)sizeof(double);
    Py_ssize_t token = 2 + (packed + 2) / 3 * 4; /* the quoted base64 */
    double *kept = PyMem_Malloc(sizeof(double) * (size_t)(s->nkeep ? s->nkeep : 1));
    PyObject *out = PyList_New(n);
    if (kept == NULL || out == NULL) { PyMem_Free(kept); Py_XDECREF(out); return PyErr_NoMemory(); }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = PyList_GET_ITEM(values, i), *copy = Py_None;
        const char *from, *to;
        if (PyBytes_Check(value)) {
            const char *p = PyBytes_AS_STRING(value), *end = p + PyBytes_GET_SIZE(value);
            int record_clean = 1;
            if (find_extra(s, p, end, kept, &from, &to, &record_clean)) {
                clean = clean && record_clean;
                copy = PyBytes_FromStringAndSize(NULL, (end - p) - (to - from) + token);
                if (copy == NULL) { PyMem_Free(kept); Py_DECREF(out); return NULL; }
                char *w = PyBytes_AS_STRING(copy);
                memcpy(w, p, (size_t)(from - p));
                w += from - p;
                *w++ = '"';
                w = base64((const unsigned char *)kept, packed, w);
                *w++ = '"';
                memcpy(w, to, (size_t)(end - to));
            }
        }
        if (copy == Py_None) Py_INCREF(copy);
        PyList_SET_ITEM(out, i, copy);
    }
    PyMem_Free(kept);
    return Py_BuildValue("(NO)", out, clean ? Py_True : Py_False);
}

/* ---- Flow records read into columns (Stats.rows, FlowBatch, FlowRow) -------------------
 *
 * The reference is the cut path above: the record with its statistics cut out, decoded by
 * msgspec into scorer.events.flowviews.CutFlowView, then the columnar checks of its texts
 * (scorer.events.column_checks.checked_flows). rows(values, max_bytes) reads each canonical flow
 * record's fields here instead, into one FlowBatch's columns, and answers per record a
 * FlowRow (an index into the batch: the view's attributes, the same values and types, made
 * Python objects only when asked) or None where it is not the plain case, which then takes the
 * reference path: not bytes, longer than max_bytes, not an object, a key with an escape or
 * not one of FlowRecord's fields, a field twice, a field of another JSON type than the plain
 * one (a string of printable ASCII without escapes, null where the field is optional, an
 * integer within +-INT_LIMIT ``int_limit``, a number number() reads exactly), no uid or ts or
 * src_ip or dst_ip, a uid of "" (the pipeline stamps one with msgspec.structs.replace), a text
 * the columnar checks refuse (one of ``missing``, longer than ``max_text``, proto not lower
 * case), statistics scan() is unsure of. So a FlowRow is made exactly where the reference
 * accepts the record's view, with the values the view has.
 */
enum {
    FR_UID, FR_TS, FR_SOURCE, FR_LABEL, FR_SRC_IP, FR_SRC_PORT, FR_DST_IP, FR_DST_PORT, FR_PROTO, FR_SERVICE,
    FR_DURATION, FR_SRC_BYTES, FR_DST_BYTES, FR_SRC_PKTS, FR_DST_PKTS, FR_CONN_STATE, FR_HISTORY, FR_EXTRA, FR_N
};
static const char *const FR_NAMES[FR_N] = {
    "uid", "ts", "source", "label", "src_ip", "src_port", "dst_ip", "dst_port", "proto", "service",
    "duration", "src_bytes", "dst_bytes", "src_pkts", "dst_pkts", "conn_state", "history", "extra"};
/* t: a text (a string; uid, src_ip, dst_ip required, proto "tcp" when absent), o: an optional
   text (null or absent: None), f: a float, i: a bounded integer, x: the statistics. */
static const char FR_TYPE[FR_N] = {'t', 'f', 'o', 'o', 't', 'i', 't', 'i', 't', 'o',
                                   'f', 'i', 'i', 'i', 'i', 'o', 'o', 'x'};
#define FR_REQUIRED ((1u << FR_UID) | (1u << FR_TS) | (1u << FR_SRC_IP) | (1u << FR_DST_IP))
#define FR_NONE UINT32_MAX           /* a text's length: null or absent (None) */
#define FR_DEFAULT (UINT32_MAX - 1)  /* a text's length: absent, its default (proto "tcp") */
#define FR_INT_LIMIT ((uint64_t)1 << 62)

typedef union {
    double f;
    int64_t i;
    struct { uint32_t off, len; } t;
} Cell;

static const Py_ssize_t FR_LENS[FR_N] = {3, 2, 6, 5, 6, 8, 6, 8, 5, 7, 8, 9, 9, 8, 8, 10, 7, 5};

/* The field whose name and closing quote start at key (before end), or -1: looked for from
   the one after the record's previous field on (records list their fields in FlowRecord's
   order, as msgspec writes them). A name has no quote or backslash, so the quote after it
   closes the key: a key with an escape or another name is no field's. */
static int fr_field(const char *key, const char *end, int previous) {
    for (int k = 1, f = previous; k <= FR_N; k++) {
        f = f + 1 == FR_N ? 0 : f + 1;
        Py_ssize_t len = FR_LENS[f];
        if (end - key > len && key[len] == '"' && same(FR_NAMES[f], key, (size_t)len)) return f;
    }
    return -1;
}

/* One JSON integer at p within +-2**62, as msgspec reads it into the views' bounded ints. */
static int fr_int(const char *p, const char **next, int64_t *value) {
    int negative = *p == '-';
    p += negative;
    uint64_t m = 0;
    if (*p == '0') {
        p++;
    } else if (IS_DIGIT(*p)) {
        const char *start = p;
        while (IS_DIGIT(*p)) {
            if (p - start >= 19) return 0;
            m = m * 10 + (uint64_t)(*p - '0');
            p++;
        }
    } else {
        return 0;
    }
    if (IS_DIGIT(*p) || *p == '.' || *p == 'e' || *p == 'E' || m > FR_INT_LIMIT) return 0;
    *value = negative ? -(int64_t)m : (int64_t)m;
    *next = p;
    return 1;
}

/* The first byte from p on (before end) that may not stand as it is in the plain texts read
   here: a quote, a backslash, a control or non-ASCII byte (printable ASCII is 0x20-0x7e); end
   if none. Sixteen bytes a turn with SSE2: IPs and uids are longer than a byte loop's worth. */
static inline const char *plain_text(const char *p, const char *end) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(0x20);
    const __m128i del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* signed compare: bytes 0x80-0xff are negative, so not greater than 0x1f either */
        __m128i stop = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                                    _mm_or_si128(_mm_cmpgt_epi8(space, v),
                                                 _mm_cmpeq_epi8(v, del)));
        unsigned m = (unsigned)_mm_movemask_epi8(stop);
        if (m) return p + __builtin_ctz(m);
        p += 16;
    }
#endif
    while (p < end && (unsigned char)*p >= 0x20 && (unsigned char)*p < 0x7f && *p != '"' && *p != '\\') p++;
    return p;
}

/* Whether a text passes the columnar checks (text_clean's, uid not ""). */
static int fr_text_ok(Stats *s, int field, const char *t, Py_ssize_t len) {
    if (len > s->max_text) return 0;
    for (Py_ssize_t i = 0; len <= s->missing_max && i < PyTuple_GET_SIZE(s->missing); i++) {
        PyObject *m = PyTuple_GET_ITEM(s->missing, i);
        if (PyBytes_GET_SIZE(m) == len && memcmp(PyBytes_AS_STRING(m), t, (size_t)len) == 0) return 0;
    }
    if (len == 0) return 0; /* "" is a missing marker; a uid of "" is stamped by the reference */
    if (field == FR_PROTO) {
        int cased = 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            if (t[i] >= 'A' && t[i] <= 'Z') return 0;
            cased |= t[i] >= 'a' && t[i] <= 'z';
        }
        return cased;
    }
    return 1;
}

/* The record p..end into row (FR_N cells, offsets from base) and kept; 1: the plain case. */
static int fr_parse(Stats *s, const char *base, const char *p, const char *end, Cell *row, double *kept) {
    while (p < end && IS_WS(*p)) p++;
    while (end > p && IS_WS(end[-1])) end--;
    /* As in scan(): every loop below stops at the closing '}' (end[-1]) at the latest. */
    if (end - p < 2 || *p != '{' || end[-1] != '}') return 0;
    for (int f = 0; f < FR_N; f++) {
        if (FR_TYPE[f] == 't' || FR_TYPE[f] == 'o') {
            row[f].t.off = 0;
            row[f].t.len = FR_TYPE[f] == 'o' ? FR_NONE : FR_DEFAULT;
        } else if (FR_TYPE[f] == 'f') {
            row[f].f = 0.0;
        } else {
            row[f].i = 0;
        }
    }
    for (Py_ssize_t j = 0; j < s->nkeep; j++) kept[j] = 0.0;
    uint32_t seen = 0;
    int previous = FR_N - 1;
    p++;
    for (;;) {
        while (IS_WS(*p)) p++;
        if (*p != '"') return 0;
        int f = fr_field(++p, end, previous);
        if (f < 0 || (seen & (1u << f))) return 0;
        previous = f;
        seen |= 1u << f;
        p += FR_LENS[f] + 1;
        while (IS_WS(*p)) p++;
        if (*p != ':') return 0;
        p++;
        while (IS_WS(*p)) p++;
        switch (FR_TYPE[f]) {
        case 't':
        case 'o':
            if (*p == 'n' && end - p > 4 && memcmp(p, "null", 4) == 0 && FR_TYPE[f] == 'o') {
                row[f].t.len = FR_NONE;
                p += 4;
                break;
            }
            if (*p != '"') return 0;
            {
                const char *t = ++p;
                p = plain_text(p, end);
                if (p == end || *p != '"' || !fr_text_ok(s, f, t, p - t)) return 0;
                row[f].t.off = (uint32_t)(t - base);
                row[f].t.len = (uint32_t)(p - t);
                p++;
            }
            break;
        case 'f':
            if (!number(p, &p, &row[f].f)) return 0;
            break;
        case 'i':
            if (!fr_int(p, &p, &row[f].i)) return 0;
            break;
        default: /* the statistics */
            if (*p != '{' || !scan(s, p, end, s->keep_col, kept, &p)) return 0;
        }
        while (IS_WS(*p)) p++;
        if (*p == ',') {
            p++;
            continue;
        }
        return *p == '}' && p + 1 == end && (seen & FR_REQUIRED) == FR_REQUIRED;
    }
}

typedef struct {
    PyObject_HEAD
    Py_ssize_t n, nkeep;
    PyObject **values;       /* the records' bytes, row by row (owned) */
    Cell *cells;             /* [n, FR_N] */
    double *kept;            /* [n, nkeep]: the kept statistics */
    PyObject **texts[FR_N];  /* a text column's objects, made at its first read (owned), or NULL */
} FlowBatch;

typedef struct {
    PyObject_HEAD
    FlowBatch *batch;
    Py_ssize_t i;
} FlowRow;

static PyObject *FR_TCP; /* proto's default */

static void FlowBatch_dealloc(FlowBatch *b) {
    for (Py_ssize_t i = 0; b->values && i < b->n; i++) Py_XDECREF(b->values[i]);
    for (int f = 0; f < FR_N; f++) {
        for (Py_ssize_t i = 0; b->texts[f] && i < b->n; i++) Py_XDECREF(b->texts[f][i]);
        PyMem_Free(b->texts[f]);
    }
    PyMem_Free(b->values);
    PyMem_Free(b->cells);
    PyMem_Free(b->kept);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyTypeObject FlowBatchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scorer.native._native.FlowBatch",
    .tp_basicsize = sizeof(FlowBatch),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The columns of a batch's flow records (Stats.rows); its rows are FlowRow objects.",
    .tp_dealloc = (destructor)FlowBatch_dealloc,
};

static uint64_t fr_hash(const char *t, uint32_t len) {
    uint64_t h = 1469598103934665603u;
    for (uint32_t i = 0; i < len; i++) h = (h ^ (unsigned char)t[i]) * 1099511628211u;
    return h;
}

/* Text column f of the batch, made once: one str per distinct text (but uids, each its own),
   None, or proto's default. 0 on error. */
static int fr_texts(FlowBatch *b, int f) {
    if (b->texts[f] != NULL) return 1;
    Py_ssize_t n = b->n, cap = 16;
    PyObject **objs = PyMem_Calloc((size_t)(n ? n : 1), sizeof(PyObject *));
    while (cap < 2 * n) cap *= 2;
    Py_ssize_t *table = f == FR_UID ? NULL : PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)cap);
    if (objs == NULL || (f != FR_UID && table == NULL)) {
        PyMem_Free(objs);
        PyMem_Free(table);
        PyErr_NoMemory();
        return 0;
    }
    for (Py_ssize_t j = 0; table && j < cap; j++) table[j] = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Cell c = b->cells[i * FR_N + f];
        if (c.t.len == FR_NONE || c.t.len == FR_DEFAULT) {
            objs[i] = Py_NewRef(c.t.len == FR_NONE ? Py_None : FR_TCP);
            continue;
        }
        const char *t = PyBytes_AS_STRING(b->values[i]) + c.t.off;
        size_t slot = 0;
        if (table) {
            slot = (size_t)fr_hash(t, c.t.len) & (size_t)(cap - 1);
            for (;; slot = (slot + 1) & (size_t)(cap - 1)) {
                Py_ssize_t k = table[slot];
                if (k < 0) break;
                Cell o = b->cells[k * FR_N + f];
                if (o.t.len == c.t.len && memcmp(PyBytes_AS_STRING(b->values[k]) + o.t.off, t, c.t.len) == 0) break;
            }
            if (table[slot] >= 0) {
                objs[i] = Py_NewRef(objs[table[slot]]);
                continue;
            }
        }
        PyObject *s = PyUnicode_New(c.t.len, 127); /* printable ASCII (fr_parse) */
        if (s == NULL) {
            for (Py_ssize_t k = 0; k < i; k++) Py_DECREF(objs[k]);
            PyMem_Free(objs);
            PyMem_Free(table);
            return 0;
        }
        memcpy(PyUnicode_DATA(s), t, c.t.len);
        objs[i] = s;
        if (table) table[slot] = i;
    }
    PyMem_Free(table);
    b->texts[f] = objs;
    return 1;
}

/* Field f of row i of the batch, as the view's attribute (a new reference). */
static PyObject *fr_value(FlowBatch *b, Py_ssize_t i, int f) {
    Cell c = b->cells[i * FR_N + f];
    switch (FR_TYPE[f]) {
    case 'f':
        return PyFloat_FromDouble(c.f);
    case 'i':
        return PyLong_FromLongLong(c.i);
    case 'x':
        return PyBytes_FromStringAndSize((const char *)(b->kept + i * b->nkeep), b->nkeep * (Py_ssize_t)sizeof(double));
    default:
        if (!fr_texts(b, f)) return NULL;
        return Py_NewRef(b->texts[f][i]);
    }
}

static PyObject *FlowRow_get(FlowRow *r, void *field) {
    return fr_value(r->batch, r->i, (int)(intptr_t)field);
}

static PyObject *FlowRow_repr(FlowRow *r) {
    PyObject *uid = fr_value(r->batch, r->i, FR_UID);
    if (uid == NULL) return NULL;
    PyObject *out = PyUnicode_FromFormat("FlowRow(uid=%R)", uid);
    Py_DECREF(uid);
    return out;
}

static void FlowRow_dealloc(FlowRow *r) {
    Py_DECREF(r->batch);
    PyObject_Free(r);
}

static PyGetSetDef FlowRow_getset[] = {
    {"uid", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_UID},
    {"ts", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_TS},
    {"source", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_SOURCE},
    {"label", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_LABEL},
    {"src_ip", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_SRC_IP},
    {"src_port", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_SRC_PORT},
    {"dst_ip", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_DST_IP},
    {"dst_port", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_DST_PORT},
    {"proto", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_PROTO},
    {"service", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_SERVICE},
    {"duration", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_DURATION},
    {"src_bytes", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_SRC_BYTES},
    {"dst_bytes", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_DST_BYTES},
    {"src_pkts", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_SRC_PKTS},
    {"dst_pkts", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_DST_PKTS},
    {"conn_state", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_CONN_STATE},
    {"history", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_HISTORY},
    {"extra", (getter)FlowRow_get, NULL, NULL, (void *)(intptr_t)FR_EXTRA},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FlowRowType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scorer.native._native.FlowRow",
    .tp_basicsize = sizeof(FlowRow),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One flow record of a FlowBatch: CutFlowView's attributes, read from the batch's columns.",
    .tp_dealloc = (destructor)FlowRow_dealloc,
    .tp_repr = (reprfunc)FlowRow_repr,
    .tp_getset = FlowRow_getset,
};

/* rows(values, max_bytes) -> list: per value a FlowRow, or None (the reference path decides). */
static PyObject *Stats_rows(Stats *s, PyObject *args) {
    PyObject *values;
    Py_ssize_t max_bytes;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &values, &max_bytes)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(values), m = 0, nk = s->nkeep;
    FlowBatch *b = PyObject_New(FlowBatch, &FlowBatchType);
    if (b == NULL) return NULL;
    b->n = 0;
    b->nkeep = nk;
    memset(b->texts, 0, sizeof(b->texts));
    b->values = PyMem_Malloc(sizeof(PyObject *) * (size_t)(n ? n : 1));
    b->cells = PyMem_Malloc(sizeof(Cell) * FR_N * (size_t)(n ? n : 1));
    b->kept = PyMem_Malloc(sizeof(double) * (size_t)((n ? n : 1) * (nk ? nk : 1)));
    char *ok = PyMem_Malloc((size_t)(n ? n : 1));
    PyObject *out = PyList_New(n);
    if (b->values == NULL || b->cells == NULL || b->kept == NULL || ok == NULL || out == NULL) {
        PyMem_Free(ok);
        Py_XDECREF(out);
        Py_DECREF(b);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = PyList_GET_ITEM(values, i);
        if (i + 1 < n && PyBytes_CheckExact(PyList_GET_ITEM(values, i + 1))) {
            /* the next record's two ends, read first (its start and trailing whitespace) */
            PyObject *next = PyList_GET_ITEM(values, i + 1);
            __builtin_prefetch(PyBytes_AS_STRING(next));
            __builtin_prefetch(PyBytes_AS_STRING(next) + PyBytes_GET_SIZE(next));
        }
        ok[i] = 0;
        if (PyBytes_CheckExact(v) && PyBytes_GET_SIZE(v) <= max_bytes && PyBytes_GET_SIZE(v) < INT32_MAX) {
            const char *p = PyBytes_AS_STRING(v);
            ok[i] = (char)fr_parse(s, p, p, p + PyBytes_GET_SIZE(v), b->cells + m * FR_N, b->kept + m * nk);
        }
        if (ok[i]) b->values[m++] = Py_NewRef(v);
    }
    b->n = m;
    for (Py_ssize_t i = 0, j = 0; i < n; i++) {
        PyObject *row = Py_None;
        if (ok[i]) {
            FlowRow *r = PyObject_New(FlowRow, &FlowRowType);
            if (r == NULL) {
                PyMem_Free(ok);
                for (Py_ssize_t k = i; k < n; k++) PyList_SET_ITEM(out, k, Py_NewRef(Py_None));
                Py_DECREF(out);
                Py_DECREF(b);
                return NULL;
            }
            r->batch = (FlowBatch *)Py_NewRef(b);
            r->i = j++;
            row = (PyObject *)r;
        } else {
            Py_INCREF(row);
        }
        PyList_SET_ITEM(out, i, row);
    }
    PyMem_Free(ok);
    Py_DECREF(b);
    return out;
}

/* The field of FlowRecord named attr, or -1. */
static int fr_attr(PyObject *attr) {
    for (int f = 0; f < FR_N; f++) {
        if (PyUnicode_CompareWithASCIIString(attr, FR_NAMES[f]) == 0) return f;
    }
    return -1;
}

/* flow_kept(rows, out) -> bool: the kept statistics of FlowRow rows into out [n, nkeep]
   (float64, C order); False (out untouched) where a row is anything else. */
static PyObject *flow_kept(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *rows, *out;
    if (!PyArg_ParseTuple(args, "O!O", &PyList_Type, &rows, &out)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(rows);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!Py_IS_TYPE(PyList_GET_ITEM(rows, i), &FlowRowType)) Py_RETURN_FALSE;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(out, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    Py_ssize_t k = n ? ((FlowRow *)PyList_GET_ITEM(rows, 0))->batch->nkeep : 0;
    int fits = view.format != NULL && strcmp(view.format, "d") == 0 && view.len == (Py_ssize_t)(n * k * sizeof(double));
    for (Py_ssize_t i = 0; fits && i < n; i++) fits = ((FlowRow *)PyList_GET_ITEM(rows, i))->batch->nkeep == k;
    if (!fits) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "flow_kept: out must be float64 [n, the kept statistics], C-contiguous");
        return NULL;
    }
    double *o = view.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        FlowRow *r = (FlowRow *)PyList_GET_ITEM(rows, i);
        memcpy(o + i * k, r->batch->kept + r->i * k, sizeof(double) * (size_t)k);
    }
    PyBuffer_Release(&view);
    Py_RETURN_TRUE;
}

static int tuple_of_bytes(PyObject *t) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(t); i++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(t, i))) {
            PyErr_SetString(PyExc_TypeError, "Stats: texts and missing are tuples of bytes");
            return 0;
        }
    }
    return 1;
}

static int Stats_init(Stats *s, PyObject *args, PyObject *kwds) {
    static char *kw[] = {"names", "keep", "texts", "missing", "max_text", "blank_ok", "lower", NULL};
    PyObject *names, *keep = NULL, *texts = NULL, *missing = NULL;
    Py_ssize_t max_text = 0, blank_ok = -1, lower = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!|O!O!O!nnn", kw, &PyTuple_Type, &names, &PyTuple_Type, &keep,
                                     &PyTuple_Type, &texts, &PyTuple_Type, &missing, &max_text, &blank_ok, &lower))
        return -1;
    if ((texts && !tuple_of_bytes(texts)) || (missing && !tuple_of_bytes(missing))) return -1;
    Py_XINCREF(texts);
    Py_XSETREF(s->texts, texts);
    Py_XINCREF(missing);
    Py_XSETREF(s->missing, missing ? missing : PyTuple_New(0));
    if (s->missing == NULL) return -1;
    s->max_text = max_text;
    s->missing_max = -1;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(s->missing); i++) {
        if (PyBytes_GET_SIZE(PyTuple_GET_ITEM(s->missing, i)) > s->missing_max) {
            s->missing_max = PyBytes_GET_SIZE(PyTuple_GET_ITEM(s->missing, i));
        }
    }
    s->blank_ok = blank_ok;
    s->lower = lower;
    Py_ssize_t n = PyTuple_GET_SIZE(names);
    Py_ssize_t nkeep = keep ? PyTuple_GET_SIZE(keep) : 0;
    Py_ssize_t *keep_idx = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(nkeep ? nkeep : 1));
    int *keep_col = PyMem_Malloc(sizeof(int) * (size_t)(n ? n : 1));
    if (keep_idx == NULL || keep_col == NULL) { PyMem_Free(keep_idx); PyMem_Free(keep_col); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) keep_col[i] = -1;
    for (Py_ssize_t j = 0; j < nkeep; j++) {
        Py_ssize_t idx = PyLong_AsSsize_t(PyTuple_GET_ITEM(keep, j));
        if (idx < 0 || idx >= n || keep_col[idx] >= 0) {
            PyMem_Free(keep_idx);
            PyMem_Free(keep_col);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "Stats: keep holds distinct name indices");
            return -1;
        }
        keep_idx[j] = idx;
        keep_col[idx] = (int)j;
    }
    forget_batch(s);
    PyMem_Free(s->keep);
    PyMem_Free(s->keep_col);
    s->keep = keep_idx;
    s->keep_col = keep_col;
    s->nkeep = nkeep;
    const char **ptrs = PyMem_Malloc(sizeof(char *) * (size_t)(n ? n : 1));
    Py_ssize_t *lens = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n ? n : 1));
    if (ptrs == NULL || lens == NULL) { PyMem_Free(ptrs); PyMem_Free(lens); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyBytes_Check(name)) {
            PyMem_Free(ptrs);
            PyMem_Free(lens);
            PyErr_SetString(PyExc_TypeError, "Stats: names are bytes");
            return -1;
        }
        ptrs[i] = PyBytes_AS_STRING(name);
        lens[i] = PyBytes_GET_SIZE(name);
        for (Py_ssize_t j = 0; j < lens[i]; j++) {
            unsigned char c = (unsigned char)ptrs[i][j];
            if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) { /* scan() relies on it */
                PyMem_Free(ptrs);
                PyMem_Free(lens);
                PyErr_SetString(PyExc_ValueError, "Stats: names are printable ASCII without quote or backslash");
                return -1;
            }
        }
    }
    Py_ssize_t total = 16;
    for (Py_ssize_t i = 0; i < n; i++) total += lens[i] + 4;
    char *seps = PyMem_Calloc((size_t)total, 1);
    Py_ssize_t *sep_at = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n ? n : 1));
    if (seps == NULL || sep_at == NULL) {
        PyMem_Free(ptrs);
        PyMem_Free(lens);
        PyMem_Free(seps);
        PyMem_Free(sep_at);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0, at = 0; i < n; i++) {
        sep_at[i] = at;
        seps[at] = ',';
        seps[at + 1] = '"';
        memcpy(seps + at + 2, ptrs[i], (size_t)lens[i]);
        seps[at + 2 + lens[i]] = '"';
        seps[at + 3 + lens[i]] = ':';
        at += lens[i] + 4;
    }
    PyMem_Free(s->seps);
    PyMem_Free(s->sep_at);
    s->seps = seps;
    s->sep_at = sep_at;
    PyMem_Free(s->ptrs);
    PyMem_Free(s->lens);
    Py_INCREF(names);
    Py_XSETREF(s->names, names);
    s->ptrs = ptrs;
    s->lens = lens;
    s->n = n;
    return 0;
}

static void Stats_dealloc(Stats *s) {
    forget_batch(s);
    PyMem_Free(s->seps);
    PyMem_Free(s->sep_at);
    PyMem_Free(s->keep);
    PyMem_Free(s->keep_col);
    PyMem_Free(s->ptrs);
    PyMem_Free(s->lens);
    Py_XDECREF(s->names);
    Py_XDECREF(s->texts);
    Py_XDECREF(s->missing);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static PyMethodDef Stats_methods[] = {
    {"check", (PyCFunction)Stats_check, METH_O, "Per raw object: 1 if the reference accepts it, 0 if unsure."},
    {"columns", (PyCFunction)Stats_columns, METH_VARARGS, "Write the wanted statistics; return the unsure rows."},
    {"cut", (PyCFunction)Stats_cut, METH_O,
     "Per flow record a copy with its statistics cut to the kept ones, or None; whether every cut one's texts pass."},
    {"rows", (PyCFunction)Stats_rows, METH_VARARGS, "Per flow record a FlowRow of one batch's columns, or None."},
    {NULL, NULL, 0, NULL},
};

NATIVE_TYPE(Stats, "CICFlowMeter statistics objects read from their JSON bytes.");

/* ---- numbers(events, attrs, default, out) -------------------------------------------
 *
 * The reference is scorer.features.base.number_columns (and numbers): every attribute of every
 * event an exact int or float, read as numpy's float64 conversion reads it (an int by
 * PyLong_AsDouble, correctly rounded), a non-finite float or None read as ``default``. Writes
 * out[j * n + i] (attribute j of event i: [len(attrs), n], C order) and returns True; returns
 * False, out undefined, at the first value that is not None, an exact int or float, or an int
 * beyond any double: the caller then takes the reference, which decides each value.
 */
static PyObject *numbers(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *events, *attrs, *out;
    double fallback;
    if (!PyArg_ParseTuple(args, "O!O!dO", &PyList_Type, &events, &PyTuple_Type, &attrs, &fallback, &out)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(events), k = PyTuple_GET_SIZE(attrs);
    Py_buffer view;
    if (PyObject_GetBuffer(out, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    PyObject *result = NULL;
    if (view.len != (Py_ssize_t)(n * k * sizeof(double)) || view.format == NULL || strcmp(view.format, "d") != 0) {
        PyErr_SetString(PyExc_ValueError, "numbers: out must be float64 [len(attrs), n], C-contiguous");
        goto done;
    }
    double *o = view.buf;
    int plain = 1;
    for (Py_ssize_t j = 0; plain && j < k; j++) {
        PyObject *attr = PyTuple_GET_ITEM(attrs, j);
        double *col = o + j * n;
        int field = -2; /* FlowRow's field of attr, once looked up */
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *event = PyList_GET_ITEM(events, i);
            if (Py_IS_TYPE(event, &FlowRowType)) { /* its batch's number, as its attribute reads */
                if (field == -2) field = fr_attr(attr);
                if (field >= 0 && (FR_TYPE[field] == 'f' || FR_TYPE[field] == 'i')) {
                    Cell c = ((FlowRow *)event)->batch->cells[((FlowRow *)event)->i * FR_N + field];
                    col[i] = FR_TYPE[field] == 'f' ? c.f : (double)c.i; /* finite (fr_parse); ints within 2**62 */
                    continue;
                }
            }
            PyObject *v = PyObject_GetAttr(event, attr);
            if (v == NULL) goto done;
            if (PyFloat_CheckExact(v)) {
                double d = PyFloat_AS_DOUBLE(v);
                col[i] = isfinite(d) ? d : fallback;
            } else if (PyLong_CheckExact(v)) {
                double d = PyLong_AsDouble(v);
                if (d == -1.0 && PyErr_Occurred()) {
                    PyErr_Clear(); /* beyond any double: the reference reads it */
                    plain = 0;
                }
                col[i] = d;
            } else if (v == Py_None) {
                col[i] = fallback;
            } else {
                plain = 0;
            }
            Py_DECREF(v);
            if (!plain) break;
        }
    }
    result = PyBool_FromLong(plain);
done:
    PyBuffer_Release(&view);
    return result;
}

/* ---- column(events, attr) --------------------------------------------------------------
 *
 * The reference is list(map(operator.attrgetter(attr), events)) (scorer.features.base.column).
 * Where the attribute is a slot of the event's type (a member descriptor: the fields of the
 * msgspec structs events decode into) and the type reads attributes the generic way, the
 * value is read through the descriptor, looked up once per run of events of one type, instead
 * of a lookup per event; any other attribute (a property, an instance's dict, a type with its
 * own __getattribute__ or __getattr__) by PyObject_GetAttr, as attrgetter reads it. A slot
 * that is not set raises AttributeError either way.
 */
static PyObject *column(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *events, *attr;
    if (!PyArg_ParseTuple(args, "O!U", &PyList_Type, &events, &attr)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(events);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    PyTypeObject *type = NULL;
    PyMemberDef *member = NULL;
    int field = -2; /* FlowRow's field of attr, once looked up */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_GET_SIZE(events) != n) { /* only code a fallback read ran can shrink it */
            PyErr_SetString(PyExc_RuntimeError, "column: the events changed size");
            Py_DECREF(out);
            return NULL;
        }
        PyObject *event = PyList_GET_ITEM(events, i), *value;
        if (Py_IS_TYPE(event, &FlowRowType)) { /* read from its batch's columns */
            if (field == -2) field = fr_attr(attr);
            if (field >= 0) {
                value = fr_value(((FlowRow *)event)->batch, ((FlowRow *)event)->i, field);
                if (value == NULL) {
                    Py_DECREF(out);
                    return NULL;
                }
                PyList_SET_ITEM(out, i, value);
                continue;
            }
        }
        if (Py_TYPE(event) != type) {
            type = Py_TYPE(event);
            PyObject *descr = _PyType_Lookup(type, attr); /* borrowed */
            member = descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type) && type->tp_getattro == PyObject_GenericGetAttr
                         ? ((PyMemberDescrObject *)descr)->d_member
                         : NULL;
        }
        if (member != NULL) {
            value = PyMember_GetOne((const char *)event, member);
        } else {
            Py_INCREF(event);
            value = PyObject_GetAttr(event, attr);
            Py_DECREF(event);
        }
        if (value == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, value);
    }
    return out;
}

/* ---- finite32(src, dst, transposed, clip) ----------------------------------------------
 *
 * The reference is scorer.features.base.finite32: a feature matrix's last step, NaN -> 0 and
 * every other value clipped to +-clip (so +-inf reads +-clip), then cast to float32 (C's
 * double -> float conversion, as numpy's astype). ``src`` is float64 [rows, cols], ``dst``
 * float32 [rows, cols], or [cols, rows] with ``transposed`` (a feature-major block written out
 * event-major); both C-contiguous. One pass instead of numpy's four calls and a copy.
 */
/* dst[i * step] = the finite float32 of src[i], i < n: NaN -> 0, clipped to +-clip. Two values
 * at a time with SSE2 (max, then min: a NaN comes out as the bound, and the ordered-compare mask
 * turns it into +0.0), the C expression elsewhere; the same values either way. Branch-free: a
 * branch per value cost ~4 ns on a matrix of mixed values, 4x numpy's passes. */
static void finite_run(const double *src, float *dst, Py_ssize_t n, Py_ssize_t step, double clip) {
    Py_ssize_t i = 0;
#if defined(__SSE2__)
    const __m128d lo = _mm_set1_pd(-clip), hi = _mm_set1_pd(clip);
    const __m128i zero = _mm_setzero_si128();
    /* A feature matrix is mostly +0.0 (a group no event of a small batch has: most of an EDR or
     * SIEM sheet): four values a step, and four +0.0 (all bits clear; -0.0 is not) stored as
     * they are, without the conversion. The same values as below. */
    for (; step == 1 && i + 4 <= n; i += 4) {
        __m128d a = _mm_loadu_pd(src + i), b = _mm_loadu_pd(src + i + 2);
        __m128i bits = _mm_or_si128(_mm_castpd_si128(a), _mm_castpd_si128(b));
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(bits, zero)) == 0xFFFF) {
            _mm_storeu_ps(dst + i, _mm_setzero_ps());
            continue;
        }
        a = _mm_and_pd(_mm_cmpord_pd(a, a), _mm_min_pd(_mm_max_pd(a, lo), hi));
        b = _mm_and_pd(_mm_cmpord_pd(b, b), _mm_min_pd(_mm_max_pd(b, lo), hi));
        _mm_storeu_ps(dst + i, _mm_movelh_ps(_mm_cvtpd_ps(a), _mm_cvtpd_ps(b)));
    }
    for (; i + 2 <= n; i += 2) {
        __m128d v = _mm_loadu_pd(src + i);
        __m128d kept = _mm_and_pd(_mm_cmpord_pd(v, v), _mm_min_pd(_mm_max_pd(v, lo), hi));
        __m128 f = _mm_cvtpd_ps(kept);
        if (step == 1) {
            _mm_storel_pi((__m64 *)(dst + i), f);
        } else {
            _mm_store_ss(dst + i * step, f);
            _mm_store_ss(dst + (i + 1) * step, _mm_shuffle_ps(f, f, 1));
        }
    }
#endif
    for (; i < n; i++) {
        double v = src[i];
        dst[i * step] = (float)(v != v ? 0.0 : v < -clip ? -clip : v > clip ? clip : v);
    }
}

/* With ``values`` [k, c] (float64, C-contiguous) and ``at`` (k distinct source rows), src's row
 * at[j] reads as values' row j: a feature-major block's rows computed apart (netflow's logged
 * ones) without numpy's scatter of them into it first. */
static PyObject *finite32(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *src, *dst, *values = NULL, *at = NULL;
    int transposed;
    double clip;
    if (!PyArg_ParseTuple(args, "OOpd|OO!", &src, &dst, &transposed, &clip, &values, &PyTuple_Type, &at)) return NULL;
    if ((values == NULL) != (at == NULL)) {
        PyErr_SetString(PyExc_TypeError, "finite32: values and their rows go together");
        return NULL;
    }
    Py_buffer s, d, v = {0};
    const double **from = NULL;
    if (PyObject_GetBuffer(src, &s, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(dst, &d, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&s);
        return NULL;
    }
    PyObject *result = NULL;
    if (values != NULL && PyObject_GetBuffer(values, &v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
    if (s.ndim != 2 || d.ndim != 2 || s.format == NULL || strcmp(s.format, "d") != 0 || d.format == NULL ||
        strcmp(d.format, "f") != 0 || d.shape[0] != s.shape[transposed ? 1 : 0] ||
        d.shape[1] != s.shape[transposed ? 0 : 1] ||
        (values != NULL && (v.ndim != 2 || v.format == NULL || strcmp(v.format, "d") != 0 ||
                            v.shape[1] != s.shape[1] || v.shape[0] != PyTuple_GET_SIZE(at)))) {
        PyErr_SetString(PyExc_ValueError, "finite32: src float64 [r, c] and dst float32 [r, c] ([c, r] transposed), "
                                          "values float64 [len(at), c], C-contiguous");
        goto done;
    }
    const double *in = s.buf;
    float *out = d.buf;
    Py_ssize_t rows = s.shape[0], cols = s.shape[1];
    if ((from = PyMem_Malloc(sizeof(double *) * (size_t)(rows ? rows : 1))) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t r = 0; r < rows; r++) from[r] = in + r * cols;
    for (Py_ssize_t j = 0; values != NULL && j < v.shape[0]; j++) {
        Py_ssize_t r = PyLong_AsSsize_t(PyTuple_GET_ITEM(at, j));
        if (r == -1 && PyErr_Occurred()) goto done;
        if (r < 0 || r >= rows || from[r] != in + r * cols) {
            PyErr_SetString(PyExc_ValueError, "finite32: at holds distinct rows of src");
            goto done;
        }
        from[r] = (const double *)v.buf + j * cols;
    }
    if (transposed) { /* each source row (a feature) is a destination column */
        for (Py_ssize_t c = 0; c < rows; c++) finite_run(from[c], out + c, cols, rows, clip);
    } else if (values == NULL) {
        finite_run(in, out, rows * cols, 1, clip);
    } else {
        for (Py_ssize_t r = 0; r < rows; r++) finite_run(from[r], out + r * cols, cols, 1, clip);
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(from);
    if (values != NULL && v.obj != NULL) PyBuffer_Release(&v);
    PyBuffer_Release(&s);
    PyBuffer_Release(&d);
    return result;
}

/* ---- flow_numbers(nums, out, logged, web, service) -------------------------------------
 *
 * The reference is scorer.features.netflow._numbers_reference: the netflow features computed
 * from the seven numbers of each flow (``nums`` [7, n]: duration, src/dst bytes, src/dst
 * packets, dst/src port), written to the rows of ``out`` [28, n] and ``logged`` [>= 9, n] that
 * it fills, the same IEEE operations in the same order as its numpy calls (a division where
 * numpy's ``where`` divides, 0.0 elsewhere; a NaN duration stays NaN as np.maximum keeps it).
 * ``web`` and ``service`` are the port sets, compared as doubles as numpy compares a float64
 * column with int64 members. All float64, C-contiguous.
 */
static int port_in(double port, PyObject *members) {
    Py_ssize_t k = PyTuple_GET_SIZE(members);
    for (Py_ssize_t j = 0; j < k; j++)
        if (port == PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(members, j))) return 1;
    return 0;
}

static double share(double part, double total) { return total != 0 ? part / total : 0.0; }

/* The port sets' members are floats (1 on success; 0 with TypeError). */
static int port_sets(PyObject *web, PyObject *service) {
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(web) + PyTuple_GET_SIZE(service); j++) {
        PyObject *m = j < PyTuple_GET_SIZE(web) ? PyTuple_GET_ITEM(web, j)
                                                : PyTuple_GET_ITEM(service, j - PyTuple_GET_SIZE(web));
        if (!PyFloat_CheckExact(m)) {
            PyErr_SetString(PyExc_TypeError, "flow_numbers: the port sets are tuples of floats");
            return 0;
        }
    }
    return 1;
}

/* Flow i's values of the seven numbers ``v`` (nums' column i) into column i of O [28, n] and
   L [9+, n]. */
static void flow_row(const double *v, double *O, double *L, Py_ssize_t i, Py_ssize_t n, PyObject *web,
                     PyObject *service) {
#define AT(a, row) (a)[(row) * n + i]
    double dur = v[0], sb = v[1], db = v[2], sp = v[3], dp = v[4], dport = v[5], sport = v[6];
    for (int r = 0; r < 5; r++) AT(L, r) = v[r];
    double tb = sb + db, tp = sp + dp;
    AT(L, 5) = share(sb, sp);
    AT(L, 6) = share(db, dp);
    double d = isnan(dur) ? dur : dur > 1e-3 ? dur : 1e-3;
    AT(L, 7) = tb / d;
    AT(L, 8) = tp / d;
    AT(O, 7) = share(db, tb);
    AT(O, 8) = share(dp, tp);
    AT(O, 11) = dp == 0;
    AT(O, 12) = tb == 0;
    AT(O, 17) = dport > 0 && dport < 1024;
    AT(O, 18) = dport >= 1024 && dport < 49152;
    AT(O, 19) = dport >= 49152;
    AT(O, 20) = port_in(dport, web);
    AT(O, 21) = port_in(dport, service);
    AT(O, 22) = sport > 0 && sport < 1024;
    AT(O, 23) = sport >= 49152;
#undef AT
}

static PyObject *flow_numbers(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *nums, *out, *logged, *web, *service;
    if (!PyArg_ParseTuple(args, "OOOO!O!", &nums, &out, &logged, &PyTuple_Type, &web, &PyTuple_Type, &service))
        return NULL;
    if (!port_sets(web, service)) return NULL;
    Py_buffer b[3];
    PyObject *objs[3] = {nums, out, logged};
    int flags[3] = {0, PyBUF_WRITABLE, PyBUF_WRITABLE};
    int got = 0;
    PyObject *result = NULL;
    for (; got < 3; got++)
        if (PyObject_GetBuffer(objs[got], &b[got], PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | flags[got]) < 0) goto done;
    Py_ssize_t n = b[0].ndim == 2 ? b[0].shape[1] : -1;
    for (int k = 0; k < 3; k++) {
        if (b[k].ndim != 2 || b[k].shape[1] != n || b[k].format == NULL || strcmp(b[k].format, "d") != 0 ||
            b[k].shape[0] < (k == 0 ? 7 : k == 1 ? 28 : 9)) {
            PyErr_SetString(PyExc_ValueError, "flow_numbers: nums [7, n], out [28, n], logged [9+, n]: float64, "
                                              "C-contiguous");
            goto done;
        }
    }
    const double *N = b[0].buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        double v[7];
        for (int r = 0; r < 7; r++) v[r] = N[r * n + i];
        flow_row(v, b[1].buf, b[2].buf, i, n, web, service);
    }
    result = Py_NewRef(Py_None);
done:
    for (int k = 0; k < got; k++) PyBuffer_Release(&b[k]);
    return result;
}

/* ---- flow_features(windows, rows, out, logged, web, service) --------------------------
 *
 * The reference is scorer.features.netflow.NetflowFeatures.transform up to its log1p, for a
 * batch of FlowRow rows (the columnar decode's) of CICFlowMeter records (no history, no
 * conn_state: _tcp_flags' CICFlowMeter-only case): flow_numbers' rows of the seven numbers,
 * the protocol's one-hot (rows 13-16), FIN / RST seen (24, 25) into out [28, n], and into
 * logged [11, n] the nine values log1p takes and the source's two window counts (``windows``:
 * a netflow Windows, updated in row order with the values entity_rows would pass it). Each
 * value read from the rows' batches' cells as the row's attribute reads it, without an object
 * per value. Returns False (nothing written, no window touched) where a row is anything else,
 * a Zeek record, a null proto, or its batch keeps other statistics than READ_STATISTICS'
 * four: the caller then takes the reference, which decides those.
 */
#define FLOW_KEPT 4 /* READ_STATISTICS: FIN, RST, Fwd RST, Bwd RST flag counts */

/* _PROTOS.get(proto.lower(), 3) of a printable-ASCII text (fr_parse), absent reading "tcp". */
static int proto_class(FlowBatch *b, Py_ssize_t i) {
    Cell c = b->cells[i * FR_N + FR_PROTO];
    if (c.t.len == FR_DEFAULT) return 0;
    const char *t = PyBytes_AS_STRING(b->values[i]) + c.t.off;
    char low[6] = {0};
    if (c.t.len > 5) return 3;
    for (uint32_t k = 0; k < c.t.len; k++) low[k] = (char)(t[k] >= 'A' && t[k] <= 'Z' ? t[k] + 32 : t[k]);
    if (strcmp(low, "tcp") == 0) return 0;
    if (strcmp(low, "udp") == 0) return 1;
    return strcmp(low, "icmp") == 0 || strcmp(low, "icmp6") == 0 ? 2 : 3;
}

static PyObject *flow_features(PyObject *Py_UNUSED(module), PyObject *args) {
    static const int NUMS[7] = {FR_DURATION, FR_SRC_BYTES, FR_DST_BYTES, FR_SRC_PKTS, FR_DST_PKTS, FR_DST_PORT,
                                FR_SRC_PORT};
    PyObject *windows, *rows, *out, *logged, *web, *service;
    if (!PyArg_ParseTuple(args, "OO!OOO!O!", &windows, &PyList_Type, &rows, &out, &logged, &PyTuple_Type, &web,
                          &PyTuple_Type, &service) ||
        !port_sets(web, service))
        return NULL;
    if (!Py_IS_TYPE(windows, &WindowsType) || ((Windows *)windows)->kind != KIND_NETFLOW) Py_RETURN_FALSE;
    Py_ssize_t n = PyList_GET_SIZE(rows);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!Py_IS_TYPE(row, &FlowRowType)) Py_RETURN_FALSE;
        FlowBatch *b = ((FlowRow *)row)->batch;
        const Cell *c = b->cells + ((FlowRow *)row)->i * FR_N;
        if (b->nkeep != FLOW_KEPT || c[FR_CONN_STATE].t.len != FR_NONE || c[FR_HISTORY].t.len != FR_NONE ||
            c[FR_PROTO].t.len == FR_NONE)
            Py_RETURN_FALSE;
        if (!fr_texts(b, FR_SRC_IP) || !fr_texts(b, FR_DST_IP)) return NULL; /* the window keys */
    }
    Py_buffer bo, bl;
    if (PyObject_GetBuffer(out, &bo, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (PyObject_GetBuffer(logged, &bl, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&bo);
        return NULL;
    }
    PyObject *result = NULL;
    if (bo.ndim != 2 || bl.ndim != 2 || bo.shape[0] != 28 || bl.shape[0] != 11 || bo.shape[1] != n ||
        bl.shape[1] != n || bo.format == NULL || strcmp(bo.format, "d") != 0 || bl.format == NULL ||
        strcmp(bl.format, "d") != 0) {
        PyErr_SetString(PyExc_ValueError, "flow_features: out [28, n], logged [11, n]: float64, C-contiguous");
        goto done;
    }
    double *O = bo.buf, *L = bl.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        FlowRow *r = (FlowRow *)PyList_GET_ITEM(rows, i);
        const Cell *c = r->batch->cells + r->i * FR_N;
        double v[7];
        for (int k = 0; k < 7; k++) v[k] = FR_TYPE[NUMS[k]] == 'f' ? c[NUMS[k]].f : (double)c[NUMS[k]].i;
        flow_row(v, O, L, i, n, web, service);
        int proto = proto_class(r->batch, r->i);
        for (int k = 0; k < 4; k++) O[(13 + k) * n + i] = k == proto;
        const double *kept = r->batch->kept + r->i * FLOW_KEPT;
        O[24 * n + i] = kept[0] > 0.0;
        O[25 * n + i] = kept[1] + kept[2] + kept[3] > 0.0;
    }
    Windows *w = (Windows *)windows;
    for (Py_ssize_t i = 0; i < n; i++) { /* Windows.rows' loop over the rows' own objects */
        FlowRow *r = (FlowRow *)PyList_GET_ITEM(rows, i);
        FlowBatch *b = r->batch;
        const Cell *c = b->cells + r->i * FR_N;
        Entity *e = get_entity(w, b->texts[FR_SRC_IP][r->i]);
        if (e == NULL) goto done;
        PyObject *port = PyLong_FromLongLong(c[FR_DST_PORT].i);
        if (port == NULL) goto done;
        double counts[2];
        int rc = netflow_add(w, e, c[FR_TS].f, port, b->texts[FR_DST_IP][r->i], counts);
        Py_DECREF(port);
        if (rc < 0) goto done;
        L[9 * n + i] = counts[0];
        L[10 * n + i] = counts[1];
    }
    result = Py_NewRef(Py_True);
done:
    PyBuffer_Release(&bo);
    PyBuffer_Release(&bl);
    return result;
}

/* ---- Kafka's default partitioner (murmur2 of the key), a batch of keys at once ---------
 *
 * partitions(keys, n_partitions) -> list[int]: per key (bytes; None or empty hash as b""),
 * (murmur2(key) & 0x7fffffff) % n_partitions, the Java client's and aiokafka's placement.
 * The reference is scorer.kafka.partitioner.murmur2_batch (numpy), ~20 array calls a batch
 * whatever its size: at the 50-record batches of a light stream, more than the hashing.
 */


static PyObject *partitions(PyObject *self, PyObject *args) {
    PyObject *keys;
    long count;
    if (!PyArg_ParseTuple(args, "Ol", &keys, &count)) return NULL;
    if (count < 1 || count > 0x7fffffff) {
        PyErr_SetString(PyExc_ValueError, "partitions: n_partitions must be in [1, 2**31)");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(keys, "partitions: keys must be a sequence of bytes");
    if (seq == NULL) return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    PyObject *out = PyList_New(n);
    if (out == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = items[i];
        uint32_t h;
        if (key == Py_None) {
            h = murmur2((const unsigned char *)"", 0);
        } else if (PyBytes_Check(key)) {
            h = murmur2((const unsigned char *)PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key));
        } else {
            PyErr_Format(PyExc_TypeError, "partitions: key %zd is %.100s, not bytes", i, Py_TYPE(key)->tp_name);
            goto fail;
        }
        PyObject *index = PyLong_FromLong((long)((h & 0x7fffffffu) % (uint32_t)count));
        if (index == NULL) goto fail;
        PyList_SET_ITEM(out, i, index);
    }
    Py_DECREF(seq);
    return out;
fail:
    Py_XDECREF(out);
    Py_DECREF(seq);
    return NULL;
}

/* ---- where(values) -> {value: [row, ...]} ----------------------------------------------
 *
 * The reference is scorer.events.columnar.where_reference: each distinct value of a list (in
 * first-seen order, Python's hashing and equality) with the rows holding it, ascending. The
 * decode step groups a batch's records by kind with it: one pass where a factorisation, a
 * numpy mask and nonzero per kind cost more than the grouping at 50-record batches.
 */
static PyObject *where(PyObject *Py_UNUSED(module), PyObject *values) {
    if (!PyList_Check(values)) {
        PyErr_SetString(PyExc_TypeError, "where: values must be a list");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(values);
    PyObject *out = PyDict_New();
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_GET_SIZE(values) != n) { /* a key's __eq__ could change the list */
            PyErr_SetString(PyExc_RuntimeError, "where: the values changed size");
            goto fail;
        }
        PyObject *item = Py_NewRef(PyList_GET_ITEM(values, i));
        PyObject *rows = PyDict_GetItemWithError(out, item); /* borrowed */
        if (rows != NULL) {
            Py_INCREF(rows);
        } else if (PyErr_Occurred() || (rows = PyList_New(0)) == NULL || PyDict_SetItem(out, item, rows) < 0) {
            Py_XDECREF(rows);
            Py_DECREF(item);
            goto fail;
        }
        Py_DECREF(item);
        PyObject *row = PyLong_FromSsize_t(i);
        int failed = row == NULL || PyList_Append(rows, row) < 0;
        Py_XDECREF(row);
        Py_DECREF(rows);
        if (failed) goto fail;
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

/* ---- bounded(events, floats, ints, limit, empty) -> bool -------------------------------
 *
 * Whether every event passes the decode step's column checks for certain (the reference is
 * scorer.events.column_checks.all_events_good): each attribute named in ``floats`` an exact
 * finite float, each in ``ints`` None or an exact int of at most ``limit`` in magnitude, each
 * in ``empty`` false. False at the first value that is anything else: the caller then looks
 * column by column, which decides each value. One pass instead of a set and a max/min per
 * column (and a sum of the times) at every batch.
 */
#define BOUNDED_ATTRS 16 /* attributes read through their member slots; more: by name */

/* ``event``'s attribute ``name``: through its slot where ``member`` (the type's, looked up once
 * per type in a batch) says where it is, else by name (a new reference, or NULL and an error). */
static PyObject *read_attr(PyObject *event, PyMemberDef *member, PyObject *name) {
    return member != NULL ? PyMember_GetOne((const char *)event, member) : PyObject_GetAttr(event, name);
}

static int read_ok(PyObject *event, PyObject *attrs, PyMemberDef **members, int what, long long limit) {
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(attrs); j++) {
        PyObject *v = read_attr(event, members != NULL ? members[j] : NULL, PyTuple_GET_ITEM(attrs, j));
        if (v == NULL) return -1;
        int ok;
        if (what == 0) {
            ok = PyFloat_CheckExact(v) && isfinite(PyFloat_AS_DOUBLE(v));
        } else if (what == 1) {
            ok = v == Py_None;
            if (!ok && PyLong_CheckExact(v)) {
                int overflow;
                long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
                ok = !overflow && !(x == -1 && PyErr_Occurred()) && x <= limit && x >= -limit;
                PyErr_Clear();
            }
        } else {
            int truth = PyObject_IsTrue(v);
            ok = truth == 0;
            if (truth < 0) PyErr_Clear(); /* not a certain "false": the caller looks */
        }
        Py_DECREF(v);
        if (!ok) return 0;
    }
    return 1;
}

static PyObject *bounded(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *events, *floats, *ints, *empty;
    long long limit;
    if (!PyArg_ParseTuple(args, "O!O!O!LO!", &PyList_Type, &events, &PyTuple_Type, &floats, &PyTuple_Type, &ints,
                          &limit, &PyTuple_Type, &empty))
        return NULL;
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "bounded: limit must be >= 0");
        return NULL;
    }
    PyObject *groups[3] = {floats, ints, empty};
    /* Each group's members of the events' type (a msgspec Struct's fields are member slots):
     * six reads by name an EDR event were ~650 instructions of it. */
    PyMemberDef *members[3][BOUNDED_ATTRS];
    int by_slot = 1;
    for (int g = 0; g < 3; g++) by_slot &= PyTuple_GET_SIZE(groups[g]) <= BOUNDED_ATTRS;
    PyTypeObject *type = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(events); i++) {
        PyObject *event = Py_NewRef(PyList_GET_ITEM(events, i));
        if (by_slot && Py_TYPE(event) != type) {
            type = Py_TYPE(event);
            int generic = type->tp_getattro == PyObject_GenericGetAttr;
            for (int g = 0; g < 3; g++)
                for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(groups[g]); j++) {
                    PyObject *descr = generic ? _PyType_Lookup(type, PyTuple_GET_ITEM(groups[g], j)) : NULL;
                    members[g][j] = descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)
                                        ? ((PyMemberDescrObject *)descr)->d_member
                                        : NULL;
                }
        }
        int ok = 1;
        for (int g = 0; ok == 1 && g < 3; g++) ok = read_ok(event, groups[g], by_slot ? members[g] : NULL, g, limit);
        Py_DECREF(event);
        if (ok < 0) return NULL;
        if (!ok) Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

/* ---- longest(values) -> int ----------------------------------------------------------------
 *
 * ``max(map(len, values), default=0)``: the decode step's size bound of a kind's values (msgspec
 * has decoded them: bytes, or another object len() measures), one C loop instead of a Python
 * call of len() per value; an object without a length raises len()'s TypeError.
 */
static PyObject *longest(PyObject *Py_UNUSED(module), PyObject *values) {
    if (!PyList_Check(values)) {
        PyErr_SetString(PyExc_TypeError, "longest: values must be a list");
        return NULL;
    }
    Py_ssize_t most = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(values); i++) {
        PyObject *value = PyList_GET_ITEM(values, i);
        Py_ssize_t size;
        if (PyBytes_CheckExact(value)) {
            size = PyBytes_GET_SIZE(value);
        } else {
            Py_INCREF(value);
            size = PyObject_Length(value);
            Py_DECREF(value);
            if (size < 0) return NULL;
        }
        if (size > most) most = size;
    }
    return PyLong_FromSsize_t(most);
}

/* ---- all_finite(x) -> bool----------------------------------------------------------------
 *
 * Whether every value of a C-contiguous float32 or float64 buffer is finite: numpy's
 * ``np.isfinite(x).all()`` (the features step's check of every matrix) without a boolean
 * array and two calls per kind and batch.
 */
static PyObject *all_finite(PyObject *Py_UNUSED(module), PyObject *x) {
    Py_buffer view;
    if (PyObject_GetBuffer(x, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    int ok;
    /* A value is infinite or NaN exactly when its exponent bits are all ones: OR the test over
     * the buffer, branch-free (a branch or a dependent float sum per value cost more). */
    if (view.format != NULL && strcmp(view.format, "f") == 0) {
        const uint32_t *v = view.buf;
        Py_ssize_t n = view.len / 4, i = 0;
        uint32_t bad = 0;
#if defined(__SSE2__)
        const __m128i exponent = _mm_set1_epi32(0x7f800000);
        __m128i acc = _mm_setzero_si128(), acc2 = _mm_setzero_si128();
        /* 16 values a turn in two independent chains: the loop's own instructions once per 16 */
#define EXPONENT_ALL_ONES(k) _mm_cmpeq_epi32(_mm_and_si128(_mm_loadu_si128((const __m128i *)(v + i + (k))), exponent), \
                                             exponent)
        for (; i + 16 <= n; i += 16) {
            acc = _mm_or_si128(acc, _mm_or_si128(EXPONENT_ALL_ONES(0), EXPONENT_ALL_ONES(4)));
            acc2 = _mm_or_si128(acc2, _mm_or_si128(EXPONENT_ALL_ONES(8), EXPONENT_ALL_ONES(12)));
        }
        for (; i + 4 <= n; i += 4) acc = _mm_or_si128(acc, EXPONENT_ALL_ONES(0));
#undef EXPONENT_ALL_ONES
        bad = (uint32_t)_mm_movemask_epi8(_mm_or_si128(acc, acc2));
#endif
        for (; i < n; i++) bad |= (v[i] & 0x7f800000u) == 0x7f800000u;
        ok = !bad;
    } else if (view.format != NULL && strcmp(view.format, "d") == 0) {
        const uint64_t *v = view.buf;
        Py_ssize_t n = view.len / 8;
        uint64_t bad = 0;
        for (Py_ssize_t i = 0; i < n; i++) bad |= (v[i] & 0x7ff0000000000000ull) == 0x7ff0000000000000ull;
        ok = !bad;
    } else {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "all_finite: x must be a C-contiguous float32 or float64 buffer");
        return NULL;
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(ok);
}

static PyMethodDef module_methods[] = {
    {"numbers", numbers, METH_VARARGS, "Numeric attributes of the events as float64 columns, or False."},
    {"column", column, METH_VARARGS, "An attribute of every event, as list(map(attrgetter(attr), events))."},
    {"flow_numbers", flow_numbers, METH_VARARGS, "The netflow features of the flows' seven numbers."},
    {"finite32", finite32, METH_VARARGS, "dst = src (transposed) with NaN -> 0, clipped to +-clip, as float32."},
    {"partitions", partitions, METH_VARARGS, "Kafka's default partition of each key (murmur2), as a list."},
    {"where", where, METH_O, "Each distinct value of a list (first seen first) with its rows, ascending."},
    {"longest", longest, METH_O, "The length of the longest value of a list, as max(map(len, values), default=0)."},
    {"bounded", bounded, METH_VARARGS, "Whether every event's floats are finite, ints bounded, empties false."},
    {"all_finite", all_finite, METH_O, "Whether every value of a float32/float64 buffer is finite."},
    {"flow_kept", flow_kept, METH_VARARGS, "The kept statistics of FlowRow rows into out, or False."},
    {"flow_features", flow_features, METH_VARARGS, "A FlowRow batch's netflow features before log1p, or False."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "Native parts of the scorer's hot path.", -1,
                                    module_methods};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&WindowsType) < 0 || PyType_Ready(&StatsType) < 0 || PyType_Ready(&FlowBatchType) < 0 ||
        PyType_Ready(&FlowRowType) < 0)
        return NULL;
    if (FR_TCP == NULL && (FR_TCP = PyUnicode_InternFromString("tcp")) == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&WindowsType);
    if (PyModule_AddObject(m, "Windows", (PyObject *)&WindowsType) < 0) {
        Py_DECREF(&WindowsType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&StatsType);
    if (PyModule_AddObject(m, "Stats", (PyObject *)&StatsType) < 0) {
        Py_DECREF(&StatsType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "FlowRow", (PyObject *)&FlowRowType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* The per-row passes of the EDR features and the Sigma rule engine, in C.
 *
 * The reference is Python: scorer/features/texts.py (factorize) and scorer/rules/engine.py
 * (RuleEngine._masks). Both are a dict lookup per row of a micro-batch; here the very same
 * lookups run on the very same Python dicts (so key equality and hashing are Python's)
 * without an interpreter step, a method call and an int object per row. tests/native
 * compares the two on every stream we have and on generated hostile values.
 *
 * factorize(rows, out) -> distinct
 *   rows: a list; out: a writable C-contiguous buffer of at least len(rows) Py_ssize_t
 *   (numpy intp). Writes each row's index into distinct (first-seen order) into out.
 * masks(sel, col, wanted, n) -> {value: int}
 *   col: a list of values at rows sel (a list of row numbers in [0, n), or None for rows
 *   0..len(col)-1); wanted: an iterable of values. Returns, for every wanted value, the
 *   bitset (bit r = row r) of the rows holding it (0 when none does).
 * texts(primary, fields, name) -> list
 *   Per row, ``primary[i] or fields[i].get(name) or ""`` (either list may be None: left out),
 *   Python's truth and ``get`` (a dict's own lookup for a plain dict).
 * group(fields, sel, name, n) -> {value: int}
 *   fields: the batch's n mappings; sel: a list of rows (or None: all n). For every distinct
 *   ``fields[r].get(name)`` (None when missing) of those rows, the bitset of the rows holding
 *   it: the rule engine's column read, distinct values and masks in one pass.
 * fill(out, column, width, inverse, rows) -> None
 *   out: a writable C-contiguous 2-d float64 buffer; rows: a list of tuples (or lists) of
 *   ``width`` numbers, one per distinct value; inverse: each row of out's index into rows (an
 *   intp buffer), or None when rows has one per row of out. Writes
 *   out[i, column:column+width] = rows[inverse[i]] as numpy's float64 array of rows would hold
 *   them: one call where numpy takes three (the table, the gather, the slice's assignment).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <structmember.h>
#include <string.h>

#include "_bitmask.h"
#include "_fields.h"

static PyObject *factorize(PyObject *self, PyObject *args) {
    PyObject *rows, *out;
    if (!PyArg_ParseTuple(args, "O!O:factorize", &PyList_Type, &rows, &out)) return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(out, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(rows);
    if (view.itemsize != (Py_ssize_t)sizeof(Py_ssize_t) || view.len < n * view.itemsize || view.format == NULL
        || strchr("nlq", view.format[strlen(view.format) - 1]) == NULL) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "factorize: out must hold len(rows) intp values");
        return NULL;
    }
    Py_ssize_t *codes = (Py_ssize_t *)view.buf;
    PyObject *ids = PyDict_New(), *distinct = PyList_New(0);
    if (ids == NULL || distinct == NULL) goto fail;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows) && i < n; i++) {
        PyObject *item = PyList_GET_ITEM(rows, i);
        Py_INCREF(item); /* a key's __eq__ could change the list */
        PyObject *found = PyDict_GetItemWithError(ids, item);
        Py_ssize_t code;
        if (found != NULL) {
            code = PyLong_AsSsize_t(found);
        } else if (PyErr_Occurred()) {
            Py_DECREF(item);
            goto fail;
        } else {
            code = PyList_GET_SIZE(distinct);
            PyObject *number = PyLong_FromSsize_t(code);
            int bad = number == NULL || PyDict_SetItem(ids, item, number) < 0 || PyList_Append(distinct, item) < 0;
            Py_XDECREF(number);
            if (bad) {
                Py_DECREF(item);
                goto fail;
            }
        }
        Py_DECREF(item);
        codes[i] = code;
    }
    if (PyList_GET_SIZE(rows) != n) {
        PyErr_SetString(PyExc_RuntimeError, "factorize: rows changed size");
        goto fail;
    }
    Py_DECREF(ids);
    PyBuffer_Release(&view);
    return distinct;
fail:
    Py_XDECREF(ids);
    Py_XDECREF(distinct);
    PyBuffer_Release(&view);
    return NULL;
}

static PyObject *masks(PyObject *self, PyObject *args) {
    PyObject *sel, *col, *wanted;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "OO!On:masks", &sel, &PyList_Type, &col, &wanted, &n)) return NULL;
    if (sel != Py_None && !PyList_Check(sel)) {
        PyErr_SetString(PyExc_TypeError, "masks: sel must be a list or None");
        return NULL;
    }
    Py_ssize_t m = PyList_GET_SIZE(col);
    if (n < 0 || (sel == Py_None ? m > n : PyList_GET_SIZE(sel) != m)) {
        PyErr_SetString(PyExc_ValueError, "masks: sel and col differ in length, or more rows than n");
        return NULL;
    }
    PyObject *index = PyDict_New(), *result = NULL, *it = NULL, *value;
    unsigned char *bits = NULL;
    if (index == NULL) return NULL;
    /* Each wanted value's number, in wanted's order (a repeated value keeps its first). */
    if ((it = PyObject_GetIter(wanted)) == NULL) goto done;
    while ((value = PyIter_Next(it)) != NULL) {
        PyObject *number = PyLong_FromSsize_t(PyDict_GET_SIZE(index));
        int bad = number == NULL || PyDict_SetDefault(index, value, number) == NULL;
        Py_XDECREF(number);
        Py_DECREF(value);
        if (bad) goto done;
    }
    if (PyErr_Occurred()) goto done;
    Py_ssize_t k = PyDict_GET_SIZE(index), width = (n + 7) / 8;
    if (k > 0 && width > 0 && (bits = PyMem_Calloc((size_t)k, (size_t)width)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < m && i < PyList_GET_SIZE(col); i++) {
        Py_ssize_t r = i;
        if (sel != Py_None) {
            if (i >= PyList_GET_SIZE(sel)) break;
            r = PyLong_AsSsize_t(PyList_GET_ITEM(sel, i));
            if (r == -1 && PyErr_Occurred()) goto done;
        }
        if (r < 0 || r >= n) {
            PyErr_SetString(PyExc_IndexError, "masks: row out of range");
            goto done;
        }
        PyObject *v = PyList_GET_ITEM(col, i);
        Py_INCREF(v);
        PyObject *found = PyDict_GetItemWithError(index, v);
        Py_DECREF(v);
        if (found == NULL) {
            if (PyErr_Occurred()) goto done;
            continue;
        }
        Py_ssize_t j = PyLong_AsSsize_t(found);
        bits[j * width + r / 8] |= (unsigned char)(1u << (r % 8));
    }
    if ((result = PyDict_New()) == NULL) goto done;
    Py_ssize_t pos = 0;
    PyObject *key, *number;
    while (PyDict_Next(index, &pos, &key, &number)) {
        Py_ssize_t j = PyLong_AsSsize_t(number);
        PyObject *mask = mask_from_bytes(bits + j * width, width);
        if (mask == NULL || PyDict_SetItem(result, key, mask) < 0) {
            Py_XDECREF(mask);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(mask);
    }
done:
    PyMem_Free(bits);
    Py_XDECREF(it);
    Py_DECREF(index);
    return result;
}

static PyObject *texts(PyObject *self, PyObject *args) {
    PyObject *primary, *fields, *name;
    if (!PyArg_ParseTuple(args, "OOO:texts", &primary, &fields, &name)) return NULL;
    if ((primary != Py_None && !PyList_Check(primary)) || (fields != Py_None && !PyList_Check(fields))) {
        PyErr_SetString(PyExc_TypeError, "texts: primary and fields must be lists or None");
        return NULL;
    }
    Py_ssize_t n = primary != Py_None ? PyList_GET_SIZE(primary) : fields != Py_None ? PyList_GET_SIZE(fields) : 0;
    if (primary != Py_None && fields != Py_None && PyList_GET_SIZE(fields) != n) {
        PyErr_SetString(PyExc_ValueError, "texts: primary and fields differ in length");
        return NULL;
    }
    PyObject *empty = PyUnicode_FromStringAndSize("", 0), *out = PyList_New(n);
    if (empty == NULL || out == NULL) goto fail;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *value = NULL;
        if (primary != Py_None) {
            if (i >= PyList_GET_SIZE(primary)) goto changed;
            value = PyList_GET_ITEM(primary, i);
            Py_INCREF(value);
            int truth = PyObject_IsTrue(value);
            if (truth < 0) { Py_DECREF(value); goto fail; }
            if (!truth) Py_CLEAR(value);
        }
        if (value == NULL && fields != Py_None) {
            if (i >= PyList_GET_SIZE(fields)) goto changed;
            PyObject *row = PyList_GET_ITEM(fields, i);
            Py_INCREF(row);
            value = get_field(row, name);
            Py_DECREF(row);
            if (value == NULL) goto fail;
            int truth = PyObject_IsTrue(value);
            if (truth < 0) { Py_DECREF(value); goto fail; }
            if (!truth) Py_CLEAR(value);
        }
        if (value == NULL) {
            value = empty;
            Py_INCREF(value);
        }
        PyList_SET_ITEM(out, i, value);
    }
    Py_DECREF(empty);
    return out;
changed:
    PyErr_SetString(PyExc_RuntimeError, "texts: a list changed size");
fail:
    Py_XDECREF(empty);
    Py_XDECREF(out);
    return NULL;
}

/* group(fields, sel, name, n): the rows (bitsets) of each distinct fields[r].get(name), r in sel. */
static PyObject *group(PyObject *self, PyObject *args) {
    PyObject *fields, *sel, *name;
    Py_ssize_t n;
    if (!PyArg_ParseTuple(args, "O!OOn:group", &PyList_Type, &fields, &sel, &name, &n)) return NULL;
    if (sel != Py_None && !PyList_Check(sel)) {
        PyErr_SetString(PyExc_TypeError, "group: sel must be a list or None");
        return NULL;
    }
    Py_ssize_t m = sel == Py_None ? PyList_GET_SIZE(fields) : PyList_GET_SIZE(sel);
    if (n < 0 || PyList_GET_SIZE(fields) > n || (sel == Py_None && m != n)) {
        PyErr_SetString(PyExc_ValueError, "group: fields must hold the batch's n rows");
        return NULL;
    }
    Py_ssize_t width = (n + 7) / 8, k = 0, capacity = 8;
    PyObject *index = PyDict_New(), *result = NULL;
    unsigned char *bits = PyMem_Calloc((size_t)capacity, (size_t)(width > 0 ? width : 1));
    if (index == NULL || bits == NULL) {
        if (bits == NULL) PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t r = i;
        if (sel != Py_None) {
            if (i >= PyList_GET_SIZE(sel)) goto changed;
            r = PyLong_AsSsize_t(PyList_GET_ITEM(sel, i));
            if (r == -1 && PyErr_Occurred()) goto done;
        }
        if (r < 0 || r >= PyList_GET_SIZE(fields)) {
            PyErr_SetString(PyExc_IndexError, "group: row out of range");
            goto done;
        }
        PyObject *row = PyList_GET_ITEM(fields, r);
        Py_INCREF(row);
        PyObject *value = get_field(row, name);
        Py_DECREF(row);
        if (value == NULL) goto done;
        PyObject *found = PyDict_GetItemWithError(index, value);
        Py_ssize_t j;
        if (found != NULL) {
            j = PyLong_AsSsize_t(found);
        } else if (PyErr_Occurred()) {
            Py_DECREF(value);
            goto done;
        } else {
            j = k++;
            if (k > capacity) {
                Py_ssize_t more = capacity * 2;
                unsigned char *grown = PyMem_Realloc(bits, (size_t)more * (size_t)(width > 0 ? width : 1));
                if (grown == NULL) {
                    Py_DECREF(value);
                    PyErr_NoMemory();
                    goto done;
                }
                memset(grown + capacity * width, 0, (size_t)((more - capacity) * width));
                bits = grown, capacity = more;
            }
            PyObject *number = PyLong_FromSsize_t(j);
            int bad = number == NULL || PyDict_SetItem(index, value, number) < 0;
            Py_XDECREF(number);
            if (bad) {
                Py_DECREF(value);
                goto done;
            }
        }
        Py_DECREF(value);
        bits[j * width + r / 8] |= (unsigned char)(1u << (r % 8));
    }
    if ((result = PyDict_New()) == NULL) goto done;
    Py_ssize_t pos = 0;
    PyObject *key, *number;
    while (PyDict_Next(index, &pos, &key, &number)) {
        PyObject *mask = mask_from_bytes(bits + PyLong_AsSsize_t(number) * width, width);
        if (mask == NULL || PyDict_SetItem(result, key, mask) < 0) {
            Py_XDECREF(mask);
            Py_CLEAR(result);
            goto done;
        }
        Py_DECREF(mask);
    }
    goto done;
changed:
    PyErr_SetString(PyExc_RuntimeError, "group: sel changed size");
done:
    PyMem_Free(bits);
    Py_XDECREF(index);
    return result;
}

/* Needles: every needle of some groups found in texts in one pass per text (Aho-Corasick over
 * the needles' ASCII characters; a text's other characters match no needle, so they send the
 * automaton back to its root). count_needles gives, per text, how many distinct needles of each
 * group it contains: what ``sum(s in text for s in group)`` gives, per group. */
typedef struct {
    Py_ssize_t states, alphabet, needles, groups;
    int32_t *next;        /* states x alphabet: the state after a character (failures folded in) */
    int32_t *out_start;   /* states + 1: where each state's needles start in out */
    int32_t *out;         /* the needles ending at each state, its failure chain's included */
    int32_t *group_of;    /* needles: its group */
    int16_t symbol[128];  /* ASCII character -> symbol, -1: in no needle */
} Needles;

static void needles_free(PyObject *capsule) {
    Needles *a = PyCapsule_GetPointer(capsule, "scorer.native._edr.Needles");
    if (a == NULL) return;
    PyMem_Free(a->next);
    PyMem_Free(a->out_start);
    PyMem_Free(a->out);
    PyMem_Free(a->group_of);
    PyMem_Free(a);
}

static PyObject *compile_needles(PyObject *self, PyObject *args) {
    PyObject *groups;
    if (!PyArg_ParseTuple(args, "O!:compile_needles", &PyList_Type, &groups)) return NULL;
    Needles *a = PyMem_Calloc(1, sizeof(Needles));
    int32_t *trie = NULL, *fail = NULL, *queue = NULL, *ends = NULL, *end_next = NULL;
    if (a == NULL) return PyErr_NoMemory();
    memset(a->symbol, -1, sizeof(a->symbol));
    Py_ssize_t total = 1;
    a->groups = PyList_GET_SIZE(groups);
    for (Py_ssize_t g = 0; g < a->groups; g++) {
        PyObject *group = PyList_GET_ITEM(groups, g);
        if (!PyTuple_Check(group)) goto bad_input;
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(group); j++) {
            PyObject *needle = PyTuple_GET_ITEM(group, j);
            if (!PyUnicode_Check(needle) || PyUnicode_READY(needle) < 0 || PyUnicode_MAX_CHAR_VALUE(needle) > 127
                || PyUnicode_GET_LENGTH(needle) == 0) goto bad_input;
            const Py_UCS1 *text = PyUnicode_1BYTE_DATA(needle);
            for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(needle); i++) {
                if (a->symbol[text[i]] < 0) a->symbol[text[i]] = (int16_t)a->alphabet++;
            }
            total += PyUnicode_GET_LENGTH(needle);
            a->needles++;
        }
    }
    Py_ssize_t w = a->alphabet > 0 ? a->alphabet : 1;
    trie = PyMem_Malloc((size_t)(total * w) * sizeof(int32_t));
    fail = PyMem_Calloc((size_t)total, sizeof(int32_t));
    queue = PyMem_Malloc((size_t)total * sizeof(int32_t));
    ends = PyMem_Malloc((size_t)total * sizeof(int32_t));      /* first needle ending here, -1 */
    end_next = PyMem_Malloc((size_t)(a->needles > 0 ? a->needles : 1) * sizeof(int32_t));
    a->group_of = PyMem_Malloc((size_t)(a->needles > 0 ? a->needles : 1) * sizeof(int32_t));
    if (!trie || !fail || !queue || !ends || !end_next || !a->group_of) goto no_memory;
    for (Py_ssize_t i = 0; i < total * w; i++) trie[i] = -1;
    for (Py_ssize_t i = 0; i < total; i++) ends[i] = -1;
    Py_ssize_t states = 1, id = 0;
    for (Py_ssize_t g = 0; g < a->groups; g++) {
        PyObject *group = PyList_GET_ITEM(groups, g);
        for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(group); j++, id++) {
            PyObject *needle = PyTuple_GET_ITEM(group, j);
            const Py_UCS1 *text = PyUnicode_1BYTE_DATA(needle);
            int32_t state = 0;
            for (Py_ssize_t i = 0; i < PyUnicode_GET_LENGTH(needle); i++) {
                int32_t *to = &trie[state * w + a->symbol[text[i]]];
                if (*to < 0) *to = (int32_t)states++;
                state = *to;
            }
            a->group_of[id] = (int32_t)g;
            end_next[id] = ends[state];
            ends[state] = (int32_t)id;
        }
    }
    /* Breadth first: failure links, and missing transitions folded into the automaton. */
    Py_ssize_t head = 0, tail = 0;
    for (Py_ssize_t c = 0; c < w; c++) {
        int32_t to = trie[c];
        if (to < 0) trie[c] = 0;
        else fail[to] = 0, queue[tail++] = to;
    }
    while (head < tail) {
        int32_t state = queue[head++];
        for (Py_ssize_t c = 0; c < w; c++) {
            int32_t to = trie[state * w + c];
            if (to < 0) {
                trie[state * w + c] = trie[fail[state] * w + c];
            } else {
                fail[to] = trie[fail[state] * w + c];
                queue[tail++] = to;
            }
        }
    }
    /* Each state's needles: its own, then its failure chain's. */
    a->out_start = PyMem_Malloc((size_t)(states + 1) * sizeof(int32_t));
    Py_ssize_t count = 0;
    if (a->out_start == NULL) goto no_memory;
    for (Py_ssize_t st = 0; st < states; st++)
        for (int32_t f = (int32_t)st; f > 0; f = fail[f])
            for (int32_t e = ends[f]; e >= 0; e = end_next[e]) count++;
    a->out = PyMem_Malloc((size_t)(count > 0 ? count : 1) * sizeof(int32_t));
    if (a->out == NULL) goto no_memory;
    count = 0;
    for (Py_ssize_t st = 0; st < states; st++) {
        a->out_start[st] = (int32_t)count;
        for (int32_t f = (int32_t)st; f > 0; f = fail[f])
            for (int32_t e = ends[f]; e >= 0; e = end_next[e]) a->out[count++] = e;
    }
    a->out_start[states] = (int32_t)count;
    a->next = trie, a->states = states;
    PyMem_Free(fail);
    PyMem_Free(queue);
    PyMem_Free(ends);
    PyMem_Free(end_next);
    PyObject *capsule = PyCapsule_New(a, "scorer.native._edr.Needles", needles_free);
    if (capsule == NULL) {
        a->next = NULL;
        PyMem_Free(trie);
        trie = NULL;
        goto no_memory_set;
    }
    return capsule;
bad_input:
    PyErr_SetString(PyExc_ValueError, "compile_needles: a list of tuples of non-empty ASCII texts");
    goto fail_out;
no_memory:
    PyErr_NoMemory();
no_memory_set:
fail_out:
    PyMem_Free(trie);
    PyMem_Free(fail);
    PyMem_Free(queue);
    PyMem_Free(ends);
    PyMem_Free(end_next);
    PyMem_Free(a->out_start);
    PyMem_Free(a->out);
    PyMem_Free(a->group_of);
    PyMem_Free(a);
    return NULL;
}

static PyObject *count_needles(PyObject *self, PyObject *args) {
    PyObject *capsule, *texts;
    if (!PyArg_ParseTuple(args, "OO!:count_needles", &capsule, &PyList_Type, &texts)) return NULL;
    Needles *a = PyCapsule_GetPointer(capsule, "scorer.native._edr.Needles");
    if (a == NULL) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(texts), w = a->alphabet > 0 ? a->alphabet : 1;
    unsigned char *seen = PyMem_Calloc((size_t)(a->needles > 0 ? a->needles : 1), 1);
    Py_ssize_t *counts = PyMem_Calloc((size_t)(a->groups > 0 ? a->groups : 1), sizeof(Py_ssize_t));
    PyObject *result = PyList_New(n);
    if (seen == NULL || counts == NULL || result == NULL) {
        if (result != NULL) PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t t = 0; t < n; t++) {
        PyObject *text = PyList_GET_ITEM(texts, t);
        if (!PyUnicode_Check(text) || PyUnicode_READY(text) < 0) {
            PyErr_SetString(PyExc_TypeError, "count_needles: texts must be a list of str");
            goto fail;
        }
        int kind = PyUnicode_KIND(text);
        const void *data = PyUnicode_DATA(text);
        Py_ssize_t length = PyUnicode_GET_LENGTH(text);
        memset(seen, 0, (size_t)a->needles);
        memset(counts, 0, (size_t)a->groups * sizeof(Py_ssize_t));
        int32_t state = 0;
        for (Py_ssize_t i = 0; i < length; i++) {
            Py_UCS4 ch = PyUnicode_READ(kind, data, i);
            int16_t sym = ch < 128 ? a->symbol[ch] : -1;
            if (sym < 0) {
                state = 0;
                continue;
            }
            state = a->next[state * w + sym];
            for (int32_t o = a->out_start[state]; o < a->out_start[state + 1]; o++) {
                int32_t e = a->out[o];
                if (!seen[e]) seen[e] = 1, counts[a->group_of[e]]++;
            }
        }
        PyObject *row = PyTuple_New(a->groups);
        if (row == NULL) goto fail;
        for (Py_ssize_t g = 0; g < a->groups; g++) {
            PyObject *v = PyFloat_FromDouble((double)counts[g]);
            if (v == NULL) {
                Py_DECREF(row);
                goto fail;
            }
            PyTuple_SET_ITEM(row, g, v);
        }
        PyList_SET_ITEM(result, t, row);
    }
    PyMem_Free(seen);
    PyMem_Free(counts);
    return result;
fail:
    PyMem_Free(seen);
    PyMem_Free(counts);
    Py_XDECREF(result);
    return NULL;
}

/* A row of ``rows`` as ``width`` doubles at ``dst``: a tuple or list of numbers, floats by
 * Python's own conversion (what numpy's float64 array of it holds). */
static int row_doubles(PyObject *row, Py_ssize_t width, double *dst) {
    PyObject *seq = PySequence_Fast(row, "fill: a row must be a sequence");
    if (seq == NULL) return -1;
    if (PySequence_Fast_GET_SIZE(seq) != width) {
        Py_DECREF(seq);
        PyErr_SetString(PyExc_ValueError, "fill: a row is not width values long");
        return -1;
    }
    for (Py_ssize_t j = 0; j < width; j++) {
        double v = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, j));
        if (v == -1.0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
        dst[j] = v;
    }
    Py_DECREF(seq);
    return 0;
}

static PyObject *fill(PyObject *self, PyObject *args) {
    PyObject *out, *inverse, *rows;
    Py_ssize_t column, width;
    if (!PyArg_ParseTuple(args, "OnnOO!:fill", &out, &column, &width, &inverse, &PyList_Type, &rows)) return NULL;
    Py_buffer o, inv = {0};
    if (PyObject_GetBuffer(out, &o, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) < 0) return NULL;
    PyObject *result = NULL;
    double *table = NULL;
    int have_inverse = inverse != Py_None;
    if (o.ndim != 2 || o.itemsize != (Py_ssize_t)sizeof(double) || o.format == NULL || strcmp(o.format, "d") != 0
        || column < 0 || width < 0 || column + width > o.shape[1]) {
        PyErr_SetString(PyExc_ValueError, "fill: out must be a 2-d float64 array holding the columns");
        goto done;
    }
    Py_ssize_t n = o.shape[0], stride = o.shape[1], k = PyList_GET_SIZE(rows);
    if (have_inverse) {
        if (PyObject_GetBuffer(inverse, &inv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            have_inverse = 0;
            goto done;
        }
        if (inv.itemsize != (Py_ssize_t)sizeof(Py_ssize_t) || inv.len != n * inv.itemsize || inv.format == NULL
            || strchr("nlq", inv.format[strlen(inv.format) - 1]) == NULL) {
            PyErr_SetString(PyExc_ValueError, "fill: inverse must hold one intp per row of out");
            goto done;
        }
    } else if (k != n) {
        PyErr_SetString(PyExc_ValueError, "fill: without inverse, one row per row of out");
        goto done;
    }
    if (width == 0 || n == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if ((table = PyMem_Malloc((size_t)(k > 0 ? k : 1) * (size_t)width * sizeof(double))) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t r = 0; r < k && r < PyList_GET_SIZE(rows); r++) {
        PyObject *row = PyList_GET_ITEM(rows, r);
        Py_INCREF(row); /* a number's __float__ could change the list */
        int bad = row_doubles(row, width, table + r * width);
        Py_DECREF(row);
        if (bad) goto done;
    }
    if (PyList_GET_SIZE(rows) != k) {
        PyErr_SetString(PyExc_RuntimeError, "fill: rows changed size");
        goto done;
    }
    double *dst = (double *)o.buf + column;
    const Py_ssize_t *codes = have_inverse ? (const Py_ssize_t *)inv.buf : NULL;
    for (Py_ssize_t i = 0; i < n; i++, dst += stride) {
        Py_ssize_t r = codes != NULL ? codes[i] : i;
        if (r < 0 || r >= k) {
            PyErr_SetString(PyExc_IndexError, "fill: inverse names a row rows does not have");
            goto done;
        }
        memcpy(dst, table + r * width, (size_t)width * sizeof(double));
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(table);
    if (have_inverse) PyBuffer_Release(&inv);
    PyBuffer_Release(&o);
    return result;
}

/* present(events, attrs, fields, names) -> (set, set)
 *   The names of ``attrs`` that some event holds a value of (not None, not ""), and the ``names``
 *   some mapping of ``fields`` holds a true value of (``fields[i].get(name)``): what an EDR batch
 *   carries at all, read in one pass that stops at the first event holding each, so that a
 *   feature column no event carries costs a set lookup (most columns of a small batch). The
 *   reference is scorer.features.edr_batch.present_reference.
 */
static int holds(PyObject *value) {
    return value != Py_None && !(PyUnicode_Check(value) && PyUnicode_GET_LENGTH(value) == 0);
}

typedef PyObject *(*reader)(PyObject *item, PyObject *key);

static PyObject *read_attr(PyObject *item, PyObject *key) { return PyObject_GetAttr(item, key); }

/* Each of ``keys`` that some item of ``items`` holds added to ``out``: ``read(item, key)`` is
 * held when true (``truth``) or by holds(); the items after the first holding it are not read. */
static int add_held(PyObject *out, PyObject *items, PyObject *keys, reader read, int truth) {
    for (Py_ssize_t j = 0; j < PyTuple_GET_SIZE(keys); j++) {
        PyObject *key = PyTuple_GET_ITEM(keys, j);
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
            PyObject *item = PyList_GET_ITEM(items, i);
            Py_INCREF(item);
            PyObject *value = read(item, key);
            Py_DECREF(item);
            if (value == NULL) return -1;
            int found = truth ? PyObject_IsTrue(value) : holds(value);
            Py_DECREF(value);
            if (found < 0) return -1;
            if (found) {
                if (PySet_Add(out, key) < 0) return -1;
                break;
            }
        }
    }
    return 0;
}

static PyObject *present(PyObject *self, PyObject *args) {
    PyObject *events, *attrs, *fields, *names;
    if (!PyArg_ParseTuple(args, "O!O!O!O!:present", &PyList_Type, &events, &PyTuple_Type, &attrs, &PyList_Type,
                          &fields, &PyTuple_Type, &names))
        return NULL;
    PyObject *held = PySet_New(NULL), *keys = PySet_New(NULL), *out = NULL;
    if (held != NULL && keys != NULL && add_held(held, events, attrs, read_attr, 0) == 0 &&
        add_held(keys, fields, names, get_field, 1) == 0)
        out = PyTuple_Pack(2, held, keys);
    Py_XDECREF(held);
    Py_XDECREF(keys);
    return out;
}

/* ---- plan(groups, attrs) / run(plan, events, out) -------------------------------------------
 *
 * The EDR feature sets' column groups (v1 and v3: ~50 an event batch, each a column read, a
 * factorisation and a fill; and the SIEM set's text and severity groups) in one pass over a
 * batch, instead of ~10 Python calls each. The
 * reference is the feature blocks' Python code (scorer/features/edr*.py); the plan is their groups
 * as data (scorer.features.edr_batch.Group), and each distinct key's row still comes from the
 * blocks' own (cached, pure) Python functions, so every value is theirs. tests/features compares
 * the two paths' matrices byte for byte on real streams and hostile values.
 *
 * A group: the columns [first, first + width) of every row are row(key)'s values; the key of an
 * event is built from its parts (below) by the group's mode, "" (or a require part that is "")
 * is a row of zeros, and so is an event whose event code is not in the group's gate (the codes,
 * attribute 0, are read only by a plan with a gate or a 'c' part: SIEM alerts have none). A path group
 * (width2 > 0) gets (basename, flags, one-hot) from row and writes the one-hot row at first2 and
 * the basename into its slot, which later groups read as a part. Parts (kind, index, name):
 *   'a' attribute ``index`` (a text or None: None reads "");  'r' the same, None refused;
 *   'f' ``fields.get(name) or ""``;  's' str(attribute) (an int or None);  'c' the event code (its
 *   text, or the int itself in a RAW group);  'n' the number ``numbers()`` reads (float, None and
 *   texts ``default``);  'b' the attribute is False;  'p' slot ``index``'s basename.
 * Modes: FIRST (the first non-empty part), JOIN (the parts joined by sep), WORDS (the non-empty
 * parts joined by sep), TUPLE (the parts as a tuple), RAW (the one part's object).
 * Like numpy's put of the blocks' rows, a destination is written only when some row of the
 * group holds a true value (a group of -0.0 rows leaves +0.0).
 *
 * run() answers False, and writes what it wrote so far, where anything is not as the decoder
 * makes it (an event of another type, a value of another type than its field's, fields that are
 * not a dict, a row function that raises): the caller then runs the Python blocks on a fresh
 * matrix, which give that batch's values or raise its error.
 */
enum { M_FIRST, M_JOIN, M_WORDS, M_TUPLE, M_RAW };
#define MAX_PARTS 8
#define MAX_TYPES 4
#define CACHE_ENTRIES 1024 /* per group; a group's cache is emptied when full */
#define CACHE_LONGEST 1024 /* longer keys are not kept (text_memo's bound) */

typedef struct {
    char kind;
    Py_ssize_t index;
    PyObject *name;
} Part;

typedef struct {
    Py_ssize_t first, width, first2, width2, slot;
    int mode, require, nparts;
    Part parts[MAX_PARTS];
    PyObject *row, *gate, *sep, *cache, *joined_blanks; /* JOIN: the key of all parts "" */
    PyObject *fallback_key;                               /* 'n': the number of None */
    double fallback;
} Group;

typedef struct {
    Py_ssize_t groups, attrs, slots;
    Group *group;
    PyObject **attr;      /* attribute names: 0 event_code, 1 fields */
    PyTypeObject *type[MAX_TYPES]; /* the event types (every event is one: any other is refused) */
    int ntypes;
    PyMemberDef **member; /* per attribute: its slot, or NULL (read by PyObject_GetAttr) */
    int member_made;      /* member looked up (in type[0]; the other types share its slots) */
    int codes;               /* some group has a gate or an event-code part: run() reads the codes */
} Plan;

static void plan_free(PyObject *capsule) {
    Plan *p = PyCapsule_GetPointer(capsule, "scorer.native._edr.Plan");
    if (p == NULL) return;
    for (Py_ssize_t g = 0; g < p->groups; g++) {
        Group *gr = &p->group[g];
        Py_XDECREF(gr->row), Py_XDECREF(gr->gate), Py_XDECREF(gr->sep), Py_XDECREF(gr->cache);
        Py_XDECREF(gr->joined_blanks), Py_XDECREF(gr->fallback_key);
        for (int k = 0; k < gr->nparts; k++) Py_XDECREF(gr->parts[k].name);
    }
    for (Py_ssize_t a = 0; a < p->attrs; a++) Py_XDECREF(p->attr[a]);
    for (int t = 0; t < p->ntypes; t++) Py_XDECREF(p->type[t]);
    PyMem_Free(p->group), PyMem_Free(p->attr), PyMem_Free(p->member), PyMem_Free(p);
}

/* Each attribute's slot, looked up in the plan's first type; NULL where it is not a plain slot of
 * every type alike (the other types, e.g. scorer.events.edrrows.EndpointRow, inherit the first's
 * slots: a type that declared its own attribute is read by PyObject_GetAttr). */
static void plan_members(Plan *p) {
    for (Py_ssize_t a = 0; a < p->attrs; a++) {
        PyObject *descr = _PyType_Lookup(p->type[0], p->attr[a]);
        int slot = descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type);
        for (int t = 0; slot && t < p->ntypes; t++)
            slot = p->type[t]->tp_getattro == PyObject_GenericGetAttr && _PyType_Lookup(p->type[t], p->attr[a]) == descr;
        p->member[a] = slot ? ((PyMemberDescrObject *)descr)->d_member : NULL;
    }
    p->member_made = 1;
}

static PyObject *plan(PyObject *self, PyObject *args) {
    PyObject *groups, *attrs, *capsule, *types;
    Py_ssize_t slots;
    if (!PyArg_ParseTuple(args, "O!O!nO:plan", &PyList_Type, &groups, &PyTuple_Type, &attrs, &slots, &types))
        return NULL;
    int ntypes = PyType_Check(types) ? 1 : PyTuple_Check(types) ? (int)PyTuple_GET_SIZE(types) : -1;
    if (ntypes < 1 || ntypes > MAX_TYPES) {
        PyErr_SetString(PyExc_TypeError, "plan: the event type must be a type or a tuple of 1-4 types");
        return NULL;
    }
    for (int t = 0; t < ntypes && !PyType_Check(types); t++)
        if (!PyType_Check(PyTuple_GET_ITEM(types, t))) {
            PyErr_SetString(PyExc_TypeError, "plan: the event types must be types");
            return NULL;
        }
    Plan *p = PyMem_Calloc(1, sizeof(Plan));
    if (p == NULL) return PyErr_NoMemory();
    if ((capsule = PyCapsule_New(p, "scorer.native._edr.Plan", plan_free)) == NULL) {
        PyMem_Free(p);
        return NULL;
    }
    Py_ssize_t ng = PyList_GET_SIZE(groups), na = PyTuple_GET_SIZE(attrs);
    p->group = PyMem_Calloc((size_t)(ng ? ng : 1), sizeof(Group));
    p->attr = PyMem_Calloc((size_t)(na ? na : 1), sizeof(PyObject *));
    p->member = PyMem_Calloc((size_t)(na ? na : 1), sizeof(PyMemberDef *));
    if (p->group == NULL || p->attr == NULL || p->member == NULL) goto no_memory;
    p->slots = slots;
    for (; p->ntypes < ntypes; p->ntypes++)
        p->type[p->ntypes] = (PyTypeObject *)Py_NewRef(PyType_Check(types) ? types : PyTuple_GET_ITEM(types, p->ntypes));
    for (; p->attrs < na; p->attrs++) {
        PyObject *name = PyTuple_GET_ITEM(attrs, p->attrs);
        if (!PyUnicode_Check(name)) goto bad;
        p->attr[p->attrs] = Py_NewRef(name);
    }
    if (na < 2 || slots < 0) goto bad;
    for (; p->groups < ng; p->groups++) {
        Group *g = &p->group[p->groups];
        PyObject *parts, *gate;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(groups, p->groups), "nnnnniiUOOdO!:plan group", &g->first, &g->width,
                              &g->first2, &g->width2, &g->slot, &g->mode, &g->require, &g->sep, &g->row, &gate,
                              &g->fallback, &PyTuple_Type, &parts))
            goto fail;
        g->sep = Py_NewRef(g->sep), g->row = Py_NewRef(g->row);
        g->gate = gate == Py_None ? NULL : Py_NewRef(gate);
        if ((g->cache = PyDict_New()) == NULL) goto fail;
        if (g->first < 0 || g->width < 0 || g->first2 < 0 || g->width2 < 0 || g->slot < -1 || g->slot >= slots
            || g->mode < M_FIRST || g->mode > M_RAW || (g->gate != NULL && !PyAnySet_Check(g->gate))
            || PyTuple_GET_SIZE(parts) < 1 || PyTuple_GET_SIZE(parts) > MAX_PARTS
            || g->require >= PyTuple_GET_SIZE(parts) || (g->mode == M_RAW && PyTuple_GET_SIZE(parts) != 1))
            goto bad;
        for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(parts); k++, g->nparts++) {
            Part *pt = &g->parts[k];
            const char *kind;
            if (!PyArg_ParseTuple(PyTuple_GET_ITEM(parts, k), "snO:plan part", &kind, &pt->index, &pt->name))
                goto fail;
            pt->kind = kind[0], pt->name = Py_NewRef(pt->name);
            Py_ssize_t limit = pt->kind == 'p' ? slots : na;
            if (kind[0] == '\0' || kind[1] != '\0' || strchr("arfscnbp", pt->kind) == NULL || pt->index < 0
                || pt->index >= limit || (pt->kind == 'f' && !PyUnicode_Check(pt->name)))
                goto bad;
            p->codes |= pt->kind == 'c';
        }
        p->codes |= g->gate != NULL;
        PyObject *blanks = PyTuple_New(g->nparts);
        if (blanks == NULL) goto fail;
        for (int k = 0; k < g->nparts; k++) PyTuple_SET_ITEM(blanks, k, PyUnicode_FromStringAndSize("", 0));
        g->joined_blanks = PyErr_Occurred() ? NULL : PyUnicode_Join(g->sep, blanks);
        Py_DECREF(blanks);
        if (g->joined_blanks == NULL || (g->fallback_key = PyFloat_FromDouble(g->fallback)) == NULL) goto fail;
    }
    return capsule;
bad:
    PyErr_SetString(PyExc_ValueError, "plan: a malformed group");
    goto fail;
no_memory:
    PyErr_NoMemory();
fail:
    Py_DECREF(capsule);
    return NULL;
}

/* A batch being run: its events (held), each attribute column read once, the path slots. */
typedef struct {
    Plan *p;
    Py_ssize_t n;
    PyObject **events, **cols, **slots, *empty;
    PyObject **rows; /* a group's distinct keys' cache entries (NULL between groups) */
    double *table;   /* and their rows: n rows of the plan's widest group, for every group */
    PyMemberDef **member; /* the plan's, copied: a row function's run of the plan cannot change them */
} Batch;

/* Refuse the batch (run() answers False): a TypeError, cleared there. */
static PyObject *refuse(const char *what) {
    PyErr_SetString(PyExc_TypeError, what);
    return NULL;
}

/* Attribute ``a``'s column (borrowed references), read on the first ask. */
static PyObject **column_of(Batch *b, Py_ssize_t a) {
    PyObject **col = b->cols + a * b->n;
    if (col[0] == NULL) {
        for (Py_ssize_t e = 0; e < b->n; e++) {
            PyMemberDef *m = b->member[a];
            col[e] = m != NULL ? PyMember_GetOne((const char *)b->events[e], m)
                               : PyObject_GetAttr(b->events[e], b->p->attr[a]);
            if (col[e] == NULL) return NULL;
            if (a == 0 && !PyLong_CheckExact(col[e])) {
                refuse("run: an event code is not an int");
                return NULL;
            }
            if (a == 1 && !PyDict_CheckExact(col[e]) && !is_fieldmap(col[e])) {
                refuse("run: fields is not a dict or a FieldMap");
                return NULL;
            }
        }
    }
    return col;
}

static int blank(PyObject *key) { return PyUnicode_CheckExact(key) && PyUnicode_GET_LENGTH(key) == 0; }

/* Whether an attribute or slot part is None or "" at every event (most columns of a small batch):
 * its group's keys are then all "" without a look at each event. Its column has been read. */
static int part_blank(Batch *b, const Part *pt) {
    if (pt->kind != 'a' && pt->kind != 'p') return 0;
    PyObject **col = pt->kind == 'p' ? b->slots + pt->index * b->n : b->cols + pt->index * b->n;
    for (Py_ssize_t i = 0; i < b->n; i++)
        if (col[i] != NULL && col[i] != Py_None && !blank(col[i])) return 0;
    return 1;
}

/* An event's part as read (a new reference; NULL for a field the event's fields do not hold and an
 * unwritten slot), before part_value makes it a key's part. Its column has been read (run_group). */
static int part_raw(Batch *b, const Part *pt, Py_ssize_t i, PyObject **raw) {
    PyObject *v;
    if (pt->kind == 'p') {
        v = b->slots[pt->index * b->n + i];
    } else if (pt->kind == 'f') {
        PyObject *fields = b->cols[b->n + i];
        if (!PyDict_CheckExact(fields)) { /* a FieldMap (column_of let no other through): a new reference */
            *raw = fieldmap_api->get(fields, pt->name);
            return *raw == NULL && PyErr_Occurred() ? -1 : 0;
        }
        v = PyDict_GetItemWithError(fields, pt->name);
        if (v == NULL && PyErr_Occurred()) return -1;
    } else {
        v = b->cols[pt->index * b->n + i];
    }
    *raw = Py_XNewRef(v);
    return 0;
}

/* Whether two parts as read make the same key part: the same object, or texts, ints or floats
 * (bit for bit) of one exact type and value (none of which runs Python code to compare). */
static int same_raw(PyObject *x, PyObject *y) {
    if (x == y) return 1;
    if (x == NULL || y == NULL || Py_TYPE(x) != Py_TYPE(y)) return 0;
    if (PyUnicode_CheckExact(x)) {
        Py_ssize_t len = PyUnicode_GET_LENGTH(x);
        int kind = PyUnicode_KIND(x);
        return len == PyUnicode_GET_LENGTH(y) && kind == PyUnicode_KIND(y)
               && memcmp(PyUnicode_DATA(x), PyUnicode_DATA(y), (size_t)(len * kind)) == 0;
    }
    if (PyLong_CheckExact(x)) return PyObject_RichCompareBool(x, y, Py_EQ) == 1;
    if (PyFloat_CheckExact(x)) {
        double a = PyFloat_AS_DOUBLE(x), c = PyFloat_AS_DOUBLE(y);
        return memcmp(&a, &c, sizeof(double)) == 0;
    }
    return 0;
}

/* A part as read (part_raw's ``v``) as its key's part, a new reference: a str for text parts, else
 * the part's object. */
static PyObject *part_value(Batch *b, const Group *g, const Part *pt, PyObject *v) {
    if (pt->kind == 'p') return Py_NewRef(v != NULL ? v : b->empty);
    if (pt->kind == 'f') {
        if (v == NULL || v == Py_None || (PyUnicode_CheckExact(v) && PyUnicode_GET_LENGTH(v) == 0))
            return Py_NewRef(b->empty);
        return PyUnicode_CheckExact(v) ? Py_NewRef(v) : refuse("run: a field is not a text");
    }
    switch (pt->kind) {
    case 'a':
        if (v == Py_None) return Py_NewRef(b->empty);
        /* fall through */
    case 'r':
        return PyUnicode_CheckExact(v) ? Py_NewRef(v) : refuse("run: an attribute is not a text");
    case 's':
        return v == Py_None || PyLong_CheckExact(v) ? PyObject_Str(v) : refuse("run: not an int");
    case 'c':
        return g->mode == M_RAW ? Py_NewRef(v) : PyObject_Str(v);
    case 'b':
        return Py_NewRef(v == Py_False ? Py_True : Py_False);
    default: { /* 'n': scorer.features.base.numbers' value */
        double x = g->fallback;
        if (v == Py_None) return Py_NewRef(g->fallback_key); /* most events: one object, one key */
        if (PyFloat_CheckExact(v)) {
            x = PyFloat_AS_DOUBLE(v);
            if (!isfinite(x)) x = g->fallback;
        } else if (PyLong_CheckExact(v)) {
            x = PyLong_AsDouble(v);
            if (x == -1.0 && PyErr_Occurred()) {
                if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return NULL;
                PyErr_Clear();
                x = g->fallback;
            }
        } else if (v != Py_None && !PyUnicode_Check(v)) {
            return refuse("run: a number attribute of another type");
        }
        return PyFloat_FromDouble(x);
    }
    }
}


/* The key of an event's parts as read (new reference; "" for a row of zeros). */
static PyObject *key_of(Batch *b, const Group *g, PyObject *const *raw) {
    PyObject *values[MAX_PARTS] = {NULL}, *key = NULL;
    int got = 0, kept = 0, blanks = 0;
    for (; got < g->nparts; got++) {
        PyObject *v = part_value(b, g, &g->parts[got], raw[got]);
        if (v == NULL) goto done;
        blanks += blank(v);
        if (g->mode == M_FIRST && !blank(v)) {
            key = v;
            goto done;
        }
        if (g->mode == M_FIRST || (g->mode == M_WORDS && blank(v))) {
            Py_DECREF(v);
            continue;
        }
        values[kept++] = v;
    }
    if (g->mode == M_FIRST || kept == 0 || (g->require >= 0 && g->require < kept && blank(values[g->require]))) {
        key = Py_NewRef(b->empty);
    } else if (g->mode == M_JOIN && blanks == kept) { /* most gated events: none of the fields */
        key = Py_NewRef(g->joined_blanks);
    } else if (g->mode == M_RAW || (kept == 1 && g->mode != M_TUPLE)) {
        key = Py_NewRef(values[0]);
    } else {
        PyObject *tuple = PyTuple_New(kept);
        if (tuple == NULL) goto done;
        for (int k = 0; k < kept; k++) PyTuple_SET_ITEM(tuple, k, Py_NewRef(values[k]));
        key = g->mode == M_TUPLE ? Py_NewRef(tuple) : PyUnicode_Join(g->sep, tuple);
        Py_DECREF(tuple);
    }
done:
    for (int k = 0; k < kept; k++) Py_DECREF(values[k]);
    return key;
}

static int cacheable(PyObject *key) {
    if (PyUnicode_CheckExact(key)) return PyUnicode_GET_LENGTH(key) <= CACHE_LONGEST;
    if (!PyTuple_CheckExact(key)) return 1;
    Py_ssize_t total = 0;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(key); k++) {
        PyObject *item = PyTuple_GET_ITEM(key, k);
        total += PyUnicode_Check(item) ? PyUnicode_GET_LENGTH(item) : 0;
    }
    return total <= CACHE_LONGEST;
}

/* The row of ``key`` into ``at`` (width + width2 doubles), and its entry in the group's cache (the row
 * functions are pure): (the basename of a path group or None, the doubles as bytes), a new reference. A
 * cached row is copied, not converted again. */
static PyObject *row_of(Group *g, PyObject *key, double *at) {
    Py_ssize_t size = (g->width + g->width2) * (Py_ssize_t)sizeof(double);
    int keep = cacheable(key);
    PyObject *entry = keep ? PyDict_GetItemWithError(g->cache, key) : NULL, *row, *bytes = NULL;
    if (entry != NULL) {
        memcpy(at, PyBytes_AS_STRING(PyTuple_GET_ITEM(entry, 1)), (size_t)size);
        return Py_NewRef(entry);
    }
    if (PyErr_Occurred() || (row = PyObject_CallOneArg(g->row, key)) == NULL) return NULL;
    PyObject *base = Py_None;
    if (g->slot < 0) {
        if (row_doubles(row, g->width, at) < 0) goto fail;
    } else if (!PyTuple_CheckExact(row) || PyTuple_GET_SIZE(row) != 3 || !PyUnicode_CheckExact(PyTuple_GET_ITEM(row, 0))
               || row_doubles(PyTuple_GET_ITEM(row, 1), g->width, at) < 0
               || row_doubles(PyTuple_GET_ITEM(row, 2), g->width2, at + g->width) < 0) {
        if (!PyErr_Occurred()) refuse("run: a path row is not (basename, flags, one-hot)");
        goto fail;
    } else {
        base = PyTuple_GET_ITEM(row, 0);
    }
    if ((bytes = PyBytes_FromStringAndSize((const char *)at, size)) == NULL) goto fail;
    entry = PyTuple_Pack(2, base, bytes);
    Py_DECREF(row), Py_DECREF(bytes);
    if (entry != NULL && keep) {
        if (PyDict_GET_SIZE(g->cache) >= CACHE_ENTRIES) PyDict_Clear(g->cache);
        if (PyDict_SetItem(g->cache, key, entry) < 0) Py_CLEAR(entry);
    }
    return entry;
fail:
    Py_DECREF(row);
    return NULL;
}

static int truthy(const double *v, Py_ssize_t count) {
    for (Py_ssize_t j = 0; j < count; j++)
        if (v[j] != 0.0 || v[j] != v[j]) return 1;
    return 0;
}

/* One group over the batch, into out (rows of ``stride`` doubles). 0, or -1 with an error. */
static int run_group(Batch *b, Group *g, PyObject *ids, const Py_ssize_t *code_of, Py_ssize_t codes,
                     PyObject *code_list, double *out, Py_ssize_t stride, PyObject **keys, Py_ssize_t *index) {
    Py_ssize_t n = b->n, k = 0, w = g->width + g->width2;
    char gated[256], *in = NULL;
    int status = -1;
    PyObject **rows = b->rows;
    double *table = b->table;
    if (PyDict_GET_SIZE(ids) > 0) PyDict_Clear(ids); /* the batch's one dict of keys, emptied per group */
    if (g->gate != NULL) { /* each distinct code's membership, once */
        int any = 0;
        in = codes <= (Py_ssize_t)sizeof(gated) ? gated : PyMem_Malloc((size_t)codes);
        if (in == NULL) goto done;
        for (Py_ssize_t c = 0; c < codes; c++) {
            int m = PySet_Contains(g->gate, PyList_GET_ITEM(code_list, c));
            if (m < 0) goto done;
            in[c] = (char)m, any |= m;
        }
        if (!any) { status = 0; goto done; }
    }
    for (int p = 0; p < g->nparts; p++) {
        char kind = g->parts[p].kind;
        if (kind != 'p' && column_of(b, kind == 'f' ? 1 : kind == 'c' ? 0 : g->parts[p].index) == NULL) goto done;
    }
    int none = g->require >= 0 && part_blank(b, &g->parts[g->require]);
    if (g->mode == M_FIRST || g->mode == M_WORDS) /* a key "" exactly where every part is "" */
        for (int p = 0; p < g->nparts && (none = part_blank(b, &g->parts[p])); p++) continue;
    if (none) { status = 0; goto done; }
    int coded = g->nparts == 1 && g->parts[0].kind == 'c' && g->mode == M_RAW && in == NULL;
    if (coded) {
        /* the event code itself at every event: the batch's factorised codes are the keys */
        for (; k < codes; k++) keys[k] = Py_NewRef(PyList_GET_ITEM(code_list, k));
        memcpy(index, code_of, (size_t)n * sizeof(Py_ssize_t));
    }
    /* ``prev``: the parts as read of the last event keyed, whose key's index (or -1 for "") an event
     * with equal parts shares without a key built and looked up (most events of a batch repeat
     * the one before in most groups: a channel, an image, a user). */
    PyObject *prev[MAX_PARTS], *raw[MAX_PARTS];
    int have_prev = 0, np = g->nparts;
    for (Py_ssize_t i = 0, last = -1, prev_index = -1; !coded && i < n; i++) {
        index[i] = -1;
        if (in != NULL && !in[code_of[i]]) continue;
        int got = 0, same = have_prev;
        for (; got < np; got++) {
            if (part_raw(b, &g->parts[got], i, &raw[got]) < 0) break;
            same = same && same_raw(raw[got], prev[got]);
        }
        for (int p = 0; have_prev && p < np; p++) Py_XDECREF(prev[p]);
        memcpy(prev, raw, (size_t)got * sizeof(PyObject *));
        if (got < np) { /* prev holds the parts read before the error */
            np = got;
            goto keyed;
        }
        have_prev = 1;
        if (same) {
            index[i] = prev_index;
            continue;
        }
        PyObject *key = key_of(b, g, prev);
        if (key == NULL) goto keyed;
        if (blank(key)) {
            Py_DECREF(key);
            prev_index = -1;
            continue;
        }
        if (last >= 0 && key == keys[last]) { /* the very object of the previous key: a shared blank, a default */
            index[i] = prev_index = last;
            Py_DECREF(key);
            continue;
        }
        PyObject *found = PyDict_GetItemWithError(ids, key);
        if (found != NULL) {
            index[i] = prev_index = last = PyLong_AsSsize_t(found);
            Py_DECREF(key);
            continue;
        }
        PyObject *number = PyErr_Occurred() ? NULL : PyLong_FromSsize_t(k);
        int bad = number == NULL || PyDict_SetItem(ids, key, number) < 0;
        Py_XDECREF(number);
        if (bad) { Py_DECREF(key); goto keyed; }
        keys[k] = key, index[i] = prev_index = last = k++;
    }
keyed:
    for (int p = 0; (have_prev || np < g->nparts) && p < np; p++) Py_XDECREF(prev[p]);
    if (PyErr_Occurred()) goto done;
    if (k == 0) { status = 0; goto done; }
    int any1 = 0, any2 = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        double *at = table + j * w;
        if ((rows[j] = row_of(g, keys[j], at)) == NULL) goto done;
        any1 |= truthy(at, g->width), any2 |= truthy(at + g->width, g->width2);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t j = index[i];
        if (j < 0) continue;
        double *dst = out + i * stride;
        if (any1) memcpy(dst + g->first, table + j * w, (size_t)g->width * sizeof(double));
        if (any2) memcpy(dst + g->first2, table + j * w + g->width, (size_t)g->width2 * sizeof(double));
        if (g->slot >= 0) b->slots[g->slot * n + i] = Py_NewRef(PyTuple_GET_ITEM(rows[j], 0));
    }
    status = 0;
done:
    for (Py_ssize_t j = 0; j < k; j++) {
        Py_DECREF(keys[j]);
        Py_CLEAR(rows[j]);
    }
    if (in != gated) PyMem_Free(in);
    return status;
}

static PyObject *run(PyObject *self, PyObject *args) {
    PyObject *capsule, *events, *out, *result = NULL, *code_ids = NULL, *code_list = NULL, *ids = NULL;
    if (!PyArg_ParseTuple(args, "OO!O:run", &capsule, &PyList_Type, &events, &out)) return NULL;
    Plan *p = PyCapsule_GetPointer(capsule, "scorer.native._edr.Plan");
    if (p == NULL) return NULL;
    Py_buffer o;
    if (PyObject_GetBuffer(out, &o, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) < 0) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(events), *code_of = NULL, *index = NULL;
    Batch b = {p, n, NULL, NULL, NULL, NULL, NULL};
    PyObject **keys = NULL;
    if (o.ndim != 2 || o.itemsize != (Py_ssize_t)sizeof(double) || o.format == NULL || strcmp(o.format, "d") != 0
        || o.shape[0] != n) {
        PyErr_SetString(PyExc_ValueError, "run: out must be a float64 [len(events), columns] array");
        PyBuffer_Release(&o);
        return NULL;
    }
    for (Py_ssize_t g = 0; g < p->groups; g++) {
        Group *gr = &p->group[g];
        if (gr->first + gr->width > o.shape[1] || gr->first2 + gr->width2 > o.shape[1]) {
            PyErr_SetString(PyExc_ValueError, "run: a group's columns are outside out");
            PyBuffer_Release(&o);
            return NULL;
        }
    }
    if (n == 0) {
        PyBuffer_Release(&o);
        Py_RETURN_TRUE;
    }
    size_t cells = (size_t)n * (size_t)(p->attrs + p->slots);
    b.events = PyMem_Calloc((size_t)n, sizeof(PyObject *));
    b.cols = PyMem_Calloc(cells, sizeof(PyObject *)), b.slots = b.cols + n * p->attrs;
    keys = PyMem_Calloc((size_t)n, sizeof(PyObject *));
    code_of = PyMem_Malloc((size_t)n * sizeof(Py_ssize_t)), index = PyMem_Malloc((size_t)n * sizeof(Py_ssize_t));
    Py_ssize_t widest = 1;
    for (Py_ssize_t g = 0; g < p->groups; g++)
        if (p->group[g].width + p->group[g].width2 > widest) widest = p->group[g].width + p->group[g].width2;
    b.rows = PyMem_Calloc((size_t)n, sizeof(PyObject *));
    b.table = PyMem_Malloc((size_t)n * (size_t)widest * sizeof(double));
    b.empty = PyUnicode_FromStringAndSize("", 0);
    code_ids = PyDict_New(), code_list = PyList_New(0), ids = PyDict_New();
    if (!b.events || !b.cols || !keys || !code_of || !index || !b.rows || !b.table) {
        PyErr_NoMemory();
        goto done;
    }
    if (b.empty == NULL || code_ids == NULL || code_list == NULL || ids == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        b.events[i] = Py_NewRef(PyList_GET_ITEM(events, i));
        int t = 0;
        while (t < p->ntypes && Py_TYPE(b.events[i]) != p->type[t]) t++;
        if (t == p->ntypes) {
            refuse("run: an event of another type");
            goto done;
        }
    }
    if (!p->member_made) plan_members(p);
    if ((b.member = PyMem_Malloc((size_t)p->attrs * sizeof(PyMemberDef *))) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(b.member, p->member, (size_t)p->attrs * sizeof(PyMemberDef *));
    for (Py_ssize_t i = 0; p->codes && i < n; i++) { /* the event codes, factorised for the groups' gates */
        PyObject **codes = column_of(&b, 0), *code, *found;
        if (codes == NULL) goto done;
        code = codes[i];
        if ((found = PyDict_GetItemWithError(code_ids, code)) != NULL) {
            code_of[i] = PyLong_AsSsize_t(found);
            continue;
        }
        PyObject *number = PyErr_Occurred() ? NULL : PyLong_FromSsize_t(PyList_GET_SIZE(code_list));
        int bad = number == NULL || PyDict_SetItem(code_ids, code, number) < 0 || PyList_Append(code_list, code) < 0;
        Py_XDECREF(number);
        if (bad) goto done;
        code_of[i] = PyList_GET_SIZE(code_list) - 1;
    }
    for (Py_ssize_t g = 0; g < p->groups; g++)
        if (run_group(&b, &p->group[g], ids, code_of, PyList_GET_SIZE(code_list), code_list, (double *)o.buf,
                      o.shape[1], keys, index) < 0)
            goto done;
    result = Py_NewRef(Py_True);
done:
    if (result == NULL && PyErr_ExceptionMatches(PyExc_Exception)) { /* the Python blocks decide this batch */
        PyErr_Clear();
        result = Py_NewRef(Py_False);
    }
    if (b.cols != NULL)
        for (size_t c = 0; c < cells; c++) Py_XDECREF(b.cols[c]);
    if (b.events != NULL)
        for (Py_ssize_t i = 0; i < n; i++) Py_XDECREF(b.events[i]);
    PyMem_Free(b.events), PyMem_Free(b.cols), PyMem_Free(keys), PyMem_Free(code_of), PyMem_Free(index);
    PyMem_Free(b.rows), PyMem_Free(b.table);
    PyMem_Free(b.member);
    Py_XDECREF(b.empty), Py_XDECREF(code_ids), Py_XDECREF(code_list), Py_XDECREF(ids);
    PyBuffer_Release(&o);
    return result;
}

static PyMethodDef methods[] = {
    {"factorize", factorize, METH_VARARGS, "Distinct values of a list (first seen first), each row's index into out."},
    {"masks", masks, METH_VARARGS, "Per wanted value, the bitset of the rows holding it."},
    {"texts", texts, METH_VARARGS, "Per row, primary[i] or fields[i].get(name) or an empty string."},
    {"group", group, METH_VARARGS, "Per distinct fields[r].get(name) of the rows sel, the bitset of its rows."},
    {"compile_needles", compile_needles, METH_VARARGS, "An automaton finding groups of ASCII needles."},
    {"count_needles", count_needles, METH_VARARGS, "Per text, how many distinct needles of each group it holds."},
    {"fill", fill, METH_VARARGS, "out[i, column:column+width] = rows[inverse[i]] (rows[i] without inverse)."},
    {"present", present, METH_VARARGS, "The attrs some event holds a value of, and the names some fields mapping holds a true value of."},
    {"plan", plan, METH_VARARGS, "The EDR feature sets' column groups, compiled for run."},
    {"run", run, METH_VARARGS, "A plan's column groups over a batch of events, into out; False: refused."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_edr", "Native per-row passes of the EDR path.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__edr(void) {
    fieldmap_import(); /* the events' FieldMaps read through its C API (else through their get) */
    return PyModule_Create(&module);
}

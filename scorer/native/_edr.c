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
#include <string.h>

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

/* The unsigned little-endian integer of ``bytes[0:width]``, by the public API (a base-16 text,
 * which CPython converts in linear time for a power-of-two base). */
static PyObject *from_little_endian(const unsigned char *bytes, Py_ssize_t width) {
    static const char digits[] = "0123456789abcdef";
    char small[256], *text = width * 2 + 1 <= (Py_ssize_t)sizeof(small) ? small : PyMem_Malloc((size_t)width * 2 + 2);
    if (text == NULL) return PyErr_NoMemory();
    Py_ssize_t at = 0, top = width;
    while (top > 0 && bytes[top - 1] == 0) top--;
    for (Py_ssize_t i = top - 1; i >= 0; i--) {
        text[at++] = digits[bytes[i] >> 4];
        text[at++] = digits[bytes[i] & 15];
    }
    if (at == 0) text[at++] = '0';
    text[at] = '\0';
    PyObject *out = PyLong_FromString(text, NULL, 16);
    if (text != small) PyMem_Free(text);
    return out;
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
        PyObject *mask = from_little_endian(bits + j * width, width);
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
        PyObject *mask = from_little_endian(bits + PyLong_AsSsize_t(number) * width, width);
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

static PyMethodDef methods[] = {
    {"factorize", factorize, METH_VARARGS, "Distinct values of a list (first seen first), each row's index into out."},
    {"masks", masks, METH_VARARGS, "Per wanted value, the bitset of the rows holding it."},
    {"texts", texts, METH_VARARGS, "Per row, primary[i] or fields[i].get(name) or an empty string."},
    {"group", group, METH_VARARGS, "Per distinct fields[r].get(name) of the rows sel, the bitset of its rows."},
    {"compile_needles", compile_needles, METH_VARARGS, "An automaton finding groups of ASCII needles."},
    {"count_needles", count_needles, METH_VARARGS, "Per text, how many distinct needles of each group it holds."},
    {"fill", fill, METH_VARARGS, "out[i, column:column+width] = rows[inverse[i]] (rows[i] without inverse)."},
    {"present", present, METH_VARARGS, "The attrs some event holds a value of, and the names some fields mapping holds a true value of."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_edr", "Native per-row passes of the EDR path.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__edr(void) { return PyModule_Create(&module); }

/* Flat condition trees (scorer.rules.bitsets.flat_tree) evaluated over row sets of any width,
 * for _rules.fire: the rows of a scope where a tree holds, as scorer.rules.bitsets.evaluate_tree
 * says, with its early exits (an ``and`` stops at no rows, an ``or`` at the whole scope).
 *
 * Row sets are words here, not Python ints: a batch's atoms' rows (the amask dict's ints) are
 * read into words once a call, a tree's and/or/not are loops over them, and only a variant's
 * result is made an int again. A compiled tree (scorer.rules.bitsets.compile_tree) makes a new
 * int of ~70 digits at each operator of a 2,048-row batch and was, with the pack's 4,400 of
 * them compiled at every start, ~1 s of each process's start-up.
 */
#ifndef SCORER_NATIVE_FLAT_H
#define SCORER_NATIVE_FLAT_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_compat.h"

#include "_bitmask.h"

/* Deeper trees than this are the compiled tree's (bitsets interprets those past its own limit). */
#define FLAT_MAX_DEPTH 200

typedef struct {
    Py_ssize_t width;    /* words a row set takes in this call */
    Py_ssize_t cap;      /* slots of the table of rows read (a power of two, over twice amask's size) */
    PyObject **keys;     /* slot -> an amask value (an int) read, NULL: empty */
    Py_ssize_t *at;      /* slot -> where its words are in ``rows``, -1: not a plain int of ``width`` words */
    uint64_t *rows;      /* the words of the values read, in the order read */
    Py_ssize_t used, room;
    PyObject *amask;     /* atom -> rows, as the engine holds them */
    uint64_t one;        /* the word last read, for a batch of up to 64 rows */
    int levels;          /* depths with scratch made */
    uint64_t *level[FLAT_MAX_DEPTH + 2]; /* two row sets of scratch a depth, made when reached */
    uint64_t near[256];  /* the first depths' scratch, where it fits (every depth of a 64-row batch) */
} Flat;

/* (loops rather than memcpy/memset calls: most batches' row sets are one word) */
static inline void words_copy(uint64_t *to, const uint64_t *from, Py_ssize_t width) {
    if (width == 1) to[0] = from[0];
    else memcpy(to, from, (size_t)width * sizeof(uint64_t));
}

static inline void words_clear(uint64_t *to, Py_ssize_t width) {
    if (width == 1) to[0] = 0;
    else memset(to, 0, (size_t)width * sizeof(uint64_t));
}

static void flat_free(Flat *f) {
    PyMem_Free(f->keys);
    PyMem_Free(f->at);
    PyMem_Free(f->rows);
    for (int d = 0; d < f->levels; d++) {
        if (f->level[d] < f->near || f->level[d] >= f->near + 256) PyMem_Free(f->level[d]);
    }
    f->keys = NULL, f->at = NULL, f->rows = NULL;
    f->levels = 0;
}

/* For rows of up to ``width`` words over ``amask``, and up to ``more`` other row sets (the
 * scopes) read through flat_value: 0, or -1 with MemoryError (flat_free it either way). Width 1
 * allocates nothing and cannot fail. */
static int flat_init(Flat *f, PyObject *amask, Py_ssize_t width, Py_ssize_t more) {
    f->keys = NULL, f->at = NULL, f->rows = NULL;
    f->levels = 0;
    f->width = width;
    f->amask = amask;
    f->used = f->room = 0;
    if (width == 1) return 0; /* (a word is read where it is used: cheaper than remembering it) */
    f->cap = 8;
    while (f->cap < 2 * (PyDict_GET_SIZE(amask) + more + 1)) f->cap *= 2;
    f->keys = PyMem_Calloc((size_t)f->cap, sizeof(PyObject *));
    f->at = PyMem_Malloc((size_t)f->cap * sizeof(Py_ssize_t));
    if (f->keys == NULL || f->at == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

/* ``value`` read into one word: 1, or 0 for what is no plain int of 64 bits (no error left set). */
static inline int flat_word(PyObject *value, uint64_t *word) {
    if (PyLong_CheckExact(value)) {
        *word = PyLong_AsUnsignedLongLong(value);
        if (*word != (uint64_t)-1 || !PyErr_Occurred()) return 1;
    }
    PyErr_Clear();
    return 0;
}

/* The words of ``value`` (one of amask's ints, or a scope), read at its first use (a word: at each): NULL for what is no plain
 * int of ``width`` words (the compiled tree takes the variant), or with MemoryError set. */
static const uint64_t *flat_value(Flat *f, PyObject *value) {
    if (f->width == 1) return flat_word(value, &f->one) ? &f->one : NULL;
    size_t mask = (size_t)f->cap - 1, s = (size_t)(((uint64_t)(uintptr_t)value * 0x9E3779B97F4A7C15ull) >> 32) & mask;
    while (f->keys[s] != NULL && f->keys[s] != value) s = (s + 1) & mask;
    if (f->keys[s] == NULL) { /* (amask's values and the scopes: at most half the slots fill) */
        if (f->used + f->width > f->room) {
            Py_ssize_t room = f->room ? 2 * f->room : 16 * f->width;
            uint64_t *rows = PyMem_Realloc(f->rows, (size_t)room * sizeof(uint64_t));
            if (rows == NULL) {
                PyErr_NoMemory();
                return NULL;
            }
            f->rows = rows;
            f->room = room;
        }
        f->keys[s] = value;
        f->at[s] = -1;
        if (!PyLong_CheckExact(value) || mask_to_words(value, f->rows + f->used, f->width) < 0) PyErr_Clear();
        else {
            f->at[s] = f->used;
            f->used += f->width;
        }
    }
    return f->at[s] < 0 ? NULL : f->rows + f->at[s];
}

/* out |= the rows of ``value`` within scope (value NULL: an atom without rows). 1, 0: a value
 * that is no plain int, -1 with an error set. */
static inline int flat_or(Flat *f, PyObject *value, const uint64_t *scope, uint64_t *out) {
    if (value == NULL) return PyErr_Occurred() ? -1 : 1;
    if (f->width == 1) { /* (inline: most batches' path) */
        uint64_t word;
        if (!flat_word(value, &word)) return 0;
        out[0] |= word & scope[0];
        return 1;
    }
    const uint64_t *rows = flat_value(f, value);
    if (rows == NULL) return PyErr_Occurred() ? -1 : 0;
    for (Py_ssize_t w = 0; w < f->width; w++) out[w] |= rows[w] & scope[w];
    return 1;
}

static inline int flat_none(const uint64_t *a, Py_ssize_t width) {
    for (Py_ssize_t w = 0; w < width; w++)
        if (a[w]) return 0;
    return 1;
}

/* out = the rows of ``scope`` where ``node`` holds (out never aliases scope). 1: done; 0: a
 * node or rows this does not take (the caller runs the compiled tree); -1 with an error set. */
static int flat_eval(Flat *f, PyObject *node, const uint64_t *scope, uint64_t *out, int depth) {
    Py_ssize_t width = f->width;
    if (node == Py_True || node == Py_False) {
        for (Py_ssize_t w = 0; w < width; w++) out[w] = node == Py_True ? scope[w] : 0;
        return 1;
    }
    if (PyLong_CheckExact(node)) {
        words_clear(out, width);
        return flat_or(f, PyDict_GetItemWithError(f->amask, node), scope, out);
    }
    int ok = 1;
    if (PyFrozenSet_CheckExact(node)) { /* a wide or of atoms: those with rows, looked up the cheaper way */
        words_clear(out, width);
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        Py_hash_t hash;
        if (PyDict_GET_SIZE(f->amask) <= PySet_GET_SIZE(node)) {
            while (ok > 0 && compat_dict_next(f->amask, &pos, &key, &value, &hash)) {
                int has = PySet_Contains(node, key);
                ok = has < 0 ? -1 : has ? flat_or(f, value, scope, out) : 1;
            }
        } else {
            while (ok > 0 && _PySet_NextEntry(node, &pos, &key, &hash))
                ok = flat_or(f, PyDict_GetItemWithError(f->amask, key), scope, out);
        }
        return ok;
    }
    if (!PyTuple_CheckExact(node) || PyTuple_GET_SIZE(node) < 1 || !PyLong_CheckExact(PyTuple_GET_ITEM(node, 0))
        || depth > FLAT_MAX_DEPTH)
        return 0;
    for (; f->levels <= depth; f->levels++) {
        int d = f->levels;
        f->level[d] = 2 * width * (d + 1) <= 256 ? f->near + 2 * width * d
                                                 : PyMem_Malloc((size_t)(2 * width) * sizeof(uint64_t));
        if (f->level[d] == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    uint64_t *a = f->level[depth], *b = a + width;
    long op = PyLong_AsLong(PyTuple_GET_ITEM(node, 0));
    Py_ssize_t size = PyTuple_GET_SIZE(node);
    if (op == 0) { /* and: the rows left after each argument, none left: done */
        words_copy(out, scope, width);
        for (Py_ssize_t i = 1; i < size && ok > 0 && !flat_none(out, width); i++) {
            words_copy(a, out, width);
            ok = flat_eval(f, PyTuple_GET_ITEM(node, i), a, out, depth + 1);
        }
    } else if (op == 1) { /* or: each argument over the rows not matched yet, all matched: done */
        words_clear(out, width);
        for (Py_ssize_t i = 1; i < size && ok > 0; i++) {
            int rest = 0;
            for (Py_ssize_t w = 0; w < width; w++) rest |= (a[w] = scope[w] & ~out[w]) != 0;
            if (!rest) break;
            ok = flat_eval(f, PyTuple_GET_ITEM(node, i), a, b, depth + 1);
            for (Py_ssize_t w = 0; w < width; w++) out[w] |= b[w];
        }
    } else if (op == 2 && size == 2) {
        ok = flat_eval(f, PyTuple_GET_ITEM(node, 1), scope, a, depth + 1);
        for (Py_ssize_t w = 0; w < width; w++) out[w] = scope[w] & ~a[w];
    } else {
        ok = 0;
    }
    return ok;
}

#endif

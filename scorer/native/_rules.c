/* The Sigma rule engine's per-field pass over a micro-batch, in C.
 *
 * The reference is Python: scorer/rules/engine.py (RuleEngine._field, its column read, its
 * grouping by value and the atoms' bitsets of the values it has matched before). At the
 * small batches of a light stream (~17 EDR events) that Python was a fixed cost per field
 * (~3.5 us, ~16 fields a batch); here the very same lookups run on the very same Python
 * dicts (key equality and hashing are Python's) in one call per batch. Values the engine has
 * not matched yet come back to Python, which matches them (and remembers them) as before.
 *
 * fold(fields, events, sel, n, key, attr, how, cache, missing, amask) -> {value: int} | None
 *   fields: the batch's n ``EndpointEvent.fields`` mappings (or None when ``how`` reads no
 *   field); events: the batch's n events; sel: a list of rows (or None: all n). Each row's
 *   value is read as scorer/rules/fields.py's column reader reads it (``how``: READ_*
 *   below), grouped by value, and each distinct value's rows (bit r = row r) are or-ed into
 *   ``amask[aid]`` for every atom id in ``cache[value]`` (None: into every id of ``missing``).
 *   The values that are not a str in ``cache`` (never matched, or not a str) are returned
 *   with their rows, None when there are none.
 * fold_many(fields, events, n, present, reads, plan, amask) -> [(name, rows, misses)]
 *   plan: a list of (rows, names): every name is read over the union of the
 *   rows of the steps naming it, in first-seen order; ``reads[name]`` = (attr, how, cache,
 *   missing[, fieldrefs]) says how (fold's arguments; cache None: no matcher). A field ``how``
 *   reads from ``fields`` alone that no event carries (a key of ``present``, a set, or None: of
 *   any event's dict, looked at here) reads None on every row. fieldrefs: a tuple of (aid, other,
 *   attr, how): amask[aid] |= the rows where the field's value and field ``other``'s (read by
 *   ``how``) are both not None and equal lowered (RuleEngine._field's Python loop). Returned:
 *   the fields with misses (fold's result; their fieldrefs done) and those with no read (misses
 *   None), with their rows.
 * pairs(events, attrs, types) -> {tuple: int} | None
 *   The rows of each distinct tuple of the events' attributes ``attrs``; None when a value's
 *   type is not exactly one of its attribute's ``types`` (a tuple of types per attribute).
 * heads(events, attrs, types, cache, amask, ls_masks) -> [int] | {tuple: int} | None
 *   scorer.rules.heads.Heads.masks when every tuple of the batch is in ``cache``: the ascending
 *   logsources that hold (amask and ls_masks or-ed); else pairs()'s result, nothing written.
 * fire(candidates, rule_of, ls_of, code, ls_masks, get[, flat, n]) -> {int: int}
 *   Each candidate variant's tree over its logsource's rows, or-ed per rule (RuleEngine's loop);
 *   flat[vi] (scorer.rules.bitsets.flat_tree) evaluated here over row words (_flat.h; ``n``: the
 *   batch's rows), code[vi] called for what that walk refuses.
 * amask() -> {}: a dict sized for a batch's atoms.
 * events_of(items, classes) -> [event] | None: the items' events when each is exactly one of ``classes``.
 * or_of(amask, atoms) -> int
 *   The or of amask[a] over the atoms of set ``atoms`` that amask holds (0: none).
 * triggered(by_atom, amask, out) -> None
 *   ``out.update(by_atom[aid])`` for every ``aid`` of amask with rows (scorer.rules.bitsets.Triggers).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_compat.h"
#include "_bitmask.h"
#include "_fields.h"
#include "_flat.h"
#include "structmember.h"

enum {
    READ_FIELD = 0,       /* fields[r].get(key) */
    READ_ATTR = 1,        /* getattr(ev, attr) or None */
    READ_FIELD_ATTR = 2,  /* fields[r].get(key) or getattr(ev, attr) or None */
    READ_TEXT = 3,        /* None / "" -> None, a bool -> "true"/"false", else str(value) */
    READ_STR = 4,         /* str(getattr(ev, attr)) */
    READ_GET = 5,         /* fields[r].get(key), when None: READ_TEXT (scorer.rules.fields.getter's alias) */
};
#define READS_FIELD(how) ((how) == READ_FIELD || (how) == READ_FIELD_ATTR || (how) == READ_GET)

/* getattr(event, attr) (new reference): an attribute that is a slot of the event's type (a
 * msgspec struct's field) read through its member descriptor, as Python's generic getattr does
 * for a data descriptor, without the rest of that look-up; anything else by getattr itself. */
static PyObject *get_attr(PyObject *event, PyObject *attr) {
    PyTypeObject *type = Py_TYPE(event);
    if (type->tp_getattro == PyObject_GenericGetAttr && PyUnicode_CheckExact(attr)) {
        PyObject *descr = _PyType_Lookup(type, attr); /* (borrowed) */
        if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type))
            return PyMember_GetOne((const char *)event, ((PyMemberDescrObject *)descr)->d_member);
    }
    return PyObject_GetAttr(event, attr);
}

/* ``value or None``, stealing value. */
static PyObject *or_none(PyObject *value) {
    if (value == NULL || value == Py_None) return value;
    int truth = PyObject_IsTrue(value);
    if (truth < 0) {
        Py_DECREF(value);
        return NULL;
    }
    if (truth) return value;
    Py_DECREF(value);
    Py_RETURN_NONE;
}

/* getattr(event, attr) as text (new reference): None / "" -> None, a bool -> "true"/"false",
 * else str(value) (scorer.rules.fields._text). */
static PyObject *attr_text(PyObject *event, PyObject *attr) {
    PyObject *value = get_attr(event, attr);
    if (value == NULL || value == Py_None) return value;
    if (PyBool_Check(value)) {
        int truth = value == Py_True;
        Py_DECREF(value);
        return PyUnicode_FromString(truth ? "true" : "false");
    }
    if (PyUnicode_Check(value)) {
        if (PyUnicode_GET_LENGTH(value) == 0) {
            Py_DECREF(value);
            Py_RETURN_NONE;
        }
        if (PyUnicode_CheckExact(value)) return value;
    }
    PyObject *text = PyObject_Str(value);
    Py_DECREF(value);
    return text;
}

/* Row r's value (new reference), as scorer.rules.fields reads column ``key``. */
static PyObject *read_value(int how, PyObject *fields, PyObject *event, PyObject *key, PyObject *attr) {
    PyObject *value;
    switch (how) {
    case READ_FIELD:
        return get_field(fields, key);
    case READ_FIELD_ATTR:
        value = or_none(get_field(fields, key));
        if (value != Py_None) return value;
        Py_DECREF(value);
        /* fall through: the attribute */
    case READ_ATTR:
        return or_none(get_attr(event, attr));
    case READ_TEXT:
        return attr_text(event, attr);
    case READ_GET:
        value = get_field(fields, key);
        if (value != Py_None) return value;
        Py_DECREF(value);
        return attr_text(event, attr);
    case READ_STR:
        value = get_attr(event, attr);
        if (value == NULL || PyUnicode_CheckExact(value)) return value;
        {
            PyObject *text = PyObject_Str(value);
            Py_DECREF(value);
            return text;
        }
    default:
        PyErr_Format(PyExc_ValueError, "fold: unknown read %d", how);
        return NULL;
    }
}

/* amask[aid] |= mask (0, or -1 on an error). */
static int or_one(PyObject *amask, PyObject *aid, PyObject *mask) {
    /* (a new atom, most of them: one look-up, the mask stored as it is) */
    PyObject *before = PyDict_SetDefault(amask, aid, mask);
    if (before == NULL) return -1;
    if (before == mask) return 0;
    Py_INCREF(before); /* (borrowed, and replaced below) */
    PyObject *after = PyNumber_Or(before, mask);
    Py_DECREF(before);
    int status = after == NULL || PyDict_SetItem(amask, aid, after) < 0 ? -1 : 0;
    Py_XDECREF(after);
    return status;
}

/* amask[aid] |= mask for every aid of ``ids`` (a list or tuple of ints). */
static int or_into(PyObject *amask, PyObject *ids, PyObject *mask) {
    PyObject *seq = PySequence_Fast(ids, "fold: atom ids must be a sequence");
    if (seq == NULL) return -1;
    int status = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && status == 0; i++)
        status = or_one(amask, PySequence_Fast_GET_ITEM(seq, i), mask);
    Py_DECREF(seq);
    return status;
}

/* Distinct values in first-seen order, by Python's hash and equality (a dict's key semantics:
 * identity, else hash and ==), without a dict, an int per value and a list per field. */
typedef struct {
    Py_ssize_t mask;   /* slots - 1 (a power of two minus one, slots >= 2 * values) */
    Py_ssize_t *slot;  /* value index + 1, 0: empty */
    Py_ssize_t *used;  /* per value, its slot (so that clearing touches only those) */
    Py_hash_t *hash;   /* per value */
    PyObject **value;  /* per value, owned */
    Py_ssize_t count;
} Distinct;

static int distinct_init(Distinct *d, Py_ssize_t most) {
    Py_ssize_t slots = 8;
    while (slots < 2 * most + 2) slots *= 2;
    d->mask = slots - 1, d->count = 0;
    d->slot = PyMem_Calloc((size_t)slots, sizeof(Py_ssize_t));
    d->used = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(most + 1));
    d->hash = PyMem_Malloc(sizeof(Py_hash_t) * (size_t)(most + 1));
    d->value = PyMem_Malloc(sizeof(PyObject *) * (size_t)(most + 1));
    if (d->slot == NULL || d->used == NULL || d->hash == NULL || d->value == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void distinct_clear(Distinct *d) {
    for (Py_ssize_t j = 0; j < d->count; j++) {
        d->slot[d->used[j]] = 0;
        Py_DECREF(d->value[j]);
    }
    d->count = 0;
}

static void distinct_free(Distinct *d) {
    if (d->slot != NULL && d->used != NULL && d->value != NULL) distinct_clear(d);
    PyMem_Free(d->slot);
    PyMem_Free(d->used);
    PyMem_Free(d->hash);
    PyMem_Free(d->value);
}

/* other == value as Python says; two exact strs (most values: the same path or command line in
 * several events, equal but not the same object) compared here, without the rich comparison's
 * dispatch (an exact str's == is its code points'). */
static int same_value(PyObject *other, PyObject *value) {
    if (PyUnicode_CheckExact(other) && PyUnicode_CheckExact(value)) {
        Py_ssize_t len = PyUnicode_GET_LENGTH(other);
        int kind = PyUnicode_KIND(other);
        return len == PyUnicode_GET_LENGTH(value) && kind == PyUnicode_KIND(value) &&
               memcmp(PyUnicode_DATA(other), PyUnicode_DATA(value), (size_t)len * (size_t)kind) == 0;
    }
    return PyObject_RichCompareBool(other, value, Py_EQ);
}

/* value's index (added when new, the reference taken over either way), or -1 on an error. */
static Py_ssize_t distinct_index(Distinct *d, PyObject *value) {
    Py_hash_t h = PyObject_Hash(value);
    if (h == -1) {
        Py_DECREF(value);
        return -1;
    }
    for (size_t i = (size_t)h & (size_t)d->mask, step = 1;; i = (i + step++) & (size_t)d->mask) {
        Py_ssize_t at = d->slot[i];
        if (at == 0) {
            d->slot[i] = d->count + 1;
            d->used[d->count] = (Py_ssize_t)i;
            d->hash[d->count] = h;
            d->value[d->count] = value;
            return d->count++;
        }
        PyObject *other = d->value[at - 1];
        if (other == value) {
            Py_DECREF(value);
            return at - 1;
        }
        if (d->hash[at - 1] == h) {
            int same = same_value(other, value);
            if (same != 0) {
                Py_DECREF(value);
                return same < 0 ? -1 : at - 1;
            }
        }
    }
}

/* value's index if present, -1 if not, -2 on an error (value borrowed, h its hash). */
static Py_ssize_t distinct_find(Distinct *d, PyObject *value, Py_hash_t h) {
    for (size_t i = (size_t)h & (size_t)d->mask, step = 1;; i = (i + step++) & (size_t)d->mask) {
        Py_ssize_t at = d->slot[i];
        if (at == 0) return -1;
        PyObject *other = d->value[at - 1];
        if (other == value) return at - 1;
        if (d->hash[at - 1] == h) {
            int same = same_value(other, value);
            if (same != 0) return same < 0 ? -2 : at - 1;
        }
    }
}

/* The index of the tuple of ``values[0:width]`` (borrowed) among d's tuples, the tuple made only
 * when new (a batch's rows share a few head tuples: no tuple a row), or -1 on an error. Equal as
 * tuples are: element by element, identity first. */
static Py_ssize_t distinct_row(Distinct *d, PyObject **values, Py_ssize_t width) {
    Py_uhash_t h = 0x345678UL;
    for (Py_ssize_t a = 0; a < width; a++) {
        Py_hash_t one = PyObject_Hash(values[a]);
        if (one == -1) return -1;
        h = (h ^ (Py_uhash_t)one) * 1000003UL;
    }
    Py_hash_t hash = (Py_hash_t)h == -1 ? -2 : (Py_hash_t)h;
    for (size_t i = (size_t)hash & (size_t)d->mask, step = 1;; i = (i + step++) & (size_t)d->mask) {
        Py_ssize_t at = d->slot[i];
        if (at == 0) {
            PyObject *key = PyTuple_New(width);
            if (key == NULL) return -1;
            for (Py_ssize_t a = 0; a < width; a++) PyTuple_SET_ITEM(key, a, (Py_INCREF(values[a]), values[a]));
            d->slot[i] = d->count + 1;
            d->used[d->count] = (Py_ssize_t)i;
            d->hash[d->count] = hash;
            d->value[d->count] = key;
            return d->count++;
        }
        if (d->hash[at - 1] != hash) continue;
        PyObject *key = d->value[at - 1];
        int same = 1;
        for (Py_ssize_t a = 0; a < width && same == 1; a++) {
            PyObject *one = PyTuple_GET_ITEM(key, a);
            same = one == values[a] ? 1 : same_value(one, values[a]);
        }
        if (same < 0) return -1;
        if (same) return at - 1;
    }
}

/* Scratch of one call: the distinct values, and per position its value, the rows by value. */
typedef struct {
    Distinct d;
    Py_ssize_t *code, *sorted, *start;
    uint64_t *words;
} Scratch;

static int scratch_init(Scratch *x, Py_ssize_t n) {
    memset(x, 0, sizeof(*x));
    x->code = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(3 * n + 2));
    x->words = PyMem_Calloc((size_t)(n / 64 + 1), sizeof(uint64_t));
    if (x->code == NULL || x->words == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    x->sorted = x->code + n, x->start = x->sorted + n;
    return distinct_init(&x->d, n);
}

static void scratch_free(Scratch *x) {
    distinct_free(&x->d);
    PyMem_Free(x->code);
    PyMem_Free(x->words);
}

static int check_read(PyObject *fields, PyObject *attr, int how) {
    if (READS_FIELD(how) && fields == Py_None) {
        PyErr_SetString(PyExc_TypeError, "fold: this read needs the fields");
        return -1;
    }
    if (how != READ_FIELD && !PyUnicode_Check(attr)) {
        PyErr_SetString(PyExc_TypeError, "fold: attr must be a str for this read");
        return -1;
    }
    return 0;
}

static PyObject *lower_name; /* "lower", interned at import */

/* One fieldref of a field read into the scratch (row sel[i]'s value: d's value code[i]):
 * ref = (aid, other, attr, how), and amask[aid] |= the rows where the value and the other
 * field's (``how`` as scorer.rules.fields.getter reads it) are both not None and equal
 * lowered, as RuleEngine._field's Python loop does. ``lowered``: each value's lower(), made
 * when first needed (a str's lower() is a function of the str). */
static int fieldref(Scratch *x, PyObject *fields, PyObject *events, const Py_ssize_t *sel, Py_ssize_t m,
                    PyObject *ref, PyObject **lowered, PyObject *amask) {
    if (!PyTuple_Check(ref) || PyTuple_GET_SIZE(ref) != 4 || !PyLong_Check(PyTuple_GET_ITEM(ref, 3))) {
        PyErr_SetString(PyExc_TypeError, "fold_many: a fieldref is (aid, other, attr, how)");
        return -1;
    }
    PyObject *aid = PyTuple_GET_ITEM(ref, 0), *other = PyTuple_GET_ITEM(ref, 1), *attr = PyTuple_GET_ITEM(ref, 2);
    int how = (int)PyLong_AsLong(PyTuple_GET_ITEM(ref, 3));
    if ((how == -1 && PyErr_Occurred()) || check_read(fields, attr, how) < 0) return -1;
    Py_ssize_t top = 0;
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t r = sel[i], j = x->code[i];
        PyObject *value = x->d.value[j];
        if (value == Py_None) continue;
        PyObject *row = READS_FIELD(how) ? PyList_GET_ITEM(fields, r) : NULL, *event = PyList_GET_ITEM(events, r);
        Py_INCREF(event);
        Py_XINCREF(row);
        PyObject *second = read_value(how, row, event, other, attr);
        Py_DECREF(event);
        Py_XDECREF(row);
        if (second == NULL) return -1;
        if (second == Py_None) {
            Py_DECREF(second);
            continue;
        }
        PyObject *low = PyObject_CallMethodNoArgs(second, lower_name);
        Py_DECREF(second);
        if (low == NULL || (lowered[j] == NULL && (lowered[j] = PyObject_CallMethodNoArgs(value, lower_name)) == NULL)) {
            Py_XDECREF(low);
            return -1;
        }
        int same = PyObject_RichCompareBool(low, lowered[j], Py_EQ);
        Py_DECREF(low);
        if (same < 0) return -1;
        if (same) {
            x->words[r >> 6] |= (uint64_t)1 << (r & 63);
            if ((r >> 6) + 1 > top) top = (r >> 6) + 1;
        }
    }
    PyObject *mask = mask_from_words(x->words, top);
    memset(x->words, 0, sizeof(uint64_t) * (size_t)top);
    if (mask == NULL) return -1;
    PyObject *before = PyDict_GetItemWithError(amask, aid), *after;
    if (before == NULL && PyErr_Occurred()) after = NULL;
    else if (before == NULL) after = (Py_INCREF(mask), mask);
    else after = PyNumber_Or(before, mask);
    int bad = after == NULL || PyDict_SetItem(amask, aid, after) < 0;
    Py_DECREF(mask);
    Py_XDECREF(after);
    return bad ? -1 : 0;
}

/* Every fieldref of ``refs`` (a tuple; NULL: none) over the scratch's rows. */
static int fieldrefs(Scratch *x, PyObject *fields, PyObject *events, const Py_ssize_t *sel, Py_ssize_t m,
                     PyObject *refs, PyObject *amask) {
    if (refs == NULL || PyTuple_GET_SIZE(refs) == 0) return 0;
    PyObject **lowered = PyMem_Calloc((size_t)x->d.count + 1, sizeof(PyObject *));
    if (lowered == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int status = 0;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(refs) && status == 0; k++)
        status = fieldref(x, fields, events, sel, m, PyTuple_GET_ITEM(refs, k), lowered, amask);
    for (Py_ssize_t j = 0; j < x->d.count; j++) Py_XDECREF(lowered[j]);
    PyMem_Free(lowered);
    return status;
}

/* The pass itself over rows ``sel[0:m]`` (m <= the n the scratch was made for): amask updated,
 * the misses returned ({value: int}, or None when there are none; NULL on an error). ``cache``
 * None: the field has no matcher, only its fieldrefs ``refs`` (a tuple, or NULL) are looked at. */
static PyObject *fold_rows(Scratch *x, PyObject *fields, PyObject *events, const Py_ssize_t *sel, Py_ssize_t m,
                           Py_ssize_t n, PyObject *key, PyObject *attr, int how, PyObject *cache, PyObject *missing,
                           PyObject *refs, PyObject *amask) {
    int reads_field = READS_FIELD(how);
    Py_ssize_t *code = x->code, *sorted = x->sorted, *start = x->start;
    uint64_t *words = x->words;
    PyObject *result = NULL;
    Distinct *d = &x->d;
    for (Py_ssize_t i = 0; i < m; i++) {
        Py_ssize_t r = sel[i];
        if (r < 0 || r >= n || r >= PyList_GET_SIZE(events) || (reads_field && r >= PyList_GET_SIZE(fields))) {
            PyErr_SetString(PyExc_IndexError, "fold: row out of range");
            goto fail;
        }
        PyObject *event = PyList_GET_ITEM(events, r), *row = reads_field ? PyList_GET_ITEM(fields, r) : NULL;
        Py_INCREF(event);
        Py_XINCREF(row);
        PyObject *value = read_value(how, row, event, key, attr);
        Py_DECREF(event);
        Py_XDECREF(row);
        if (value == NULL || (code[i] = distinct_index(d, value)) < 0) goto fail;
    }
    if (fieldrefs(x, fields, events, sel, m, refs, amask) < 0) goto fail;
    if (cache == Py_None) {
        distinct_clear(d);
        Py_RETURN_NONE;
    }
    /* Rows by value (a counting sort): after it, value j's rows are sorted[start[j-1]..start[j]). */
    Py_ssize_t k = d->count;
    memset(start, 0, sizeof(Py_ssize_t) * (size_t)(k + 1));
    for (Py_ssize_t i = 0; i < m; i++) start[code[i] + 1]++;
    for (Py_ssize_t j = 1; j <= k; j++) start[j] += start[j - 1];
    for (Py_ssize_t i = 0; i < m; i++) sorted[start[code[i]]++] = sel[i];
    for (Py_ssize_t j = 0; j < k; j++) {
        Py_ssize_t lo = j ? start[j - 1] : 0, hi = start[j], top = 0;
        PyObject *value = d->value[j], *ids = NULL;
        int miss = 0, wanted;
        if (value == Py_None) {
            ids = missing;
        } else if (PyUnicode_CheckExact(value)) {
            ids = PyDict_GetItemWithError(cache, value);
            if (ids == NULL) {
                if (PyErr_Occurred()) goto fail;
                miss = 1;
            }
        } else {
            miss = 1;
        }
        Py_XINCREF(ids); /* (the cache is the engine's: kept alive while its atoms are or-ed) */
        wanted = miss ? 1 : PyObject_IsTrue(ids);
        if (wanted == 1) {
            for (Py_ssize_t s = lo; s < hi; s++) {
                Py_ssize_t r = sorted[s];
                words[r >> 6] |= (uint64_t)1 << (r & 63);
                if ((r >> 6) + 1 > top) top = (r >> 6) + 1;
            }
            PyObject *mask = mask_from_words(words, top);
            for (Py_ssize_t s = lo; s < hi; s++) words[sorted[s] >> 6] = 0;
            int bad = mask == NULL;
            if (!bad && miss) {
                if (result == NULL && (result = PyDict_New()) == NULL) bad = 1;
                else bad = PyDict_SetItem(result, value, mask) < 0;
            } else if (!bad) {
                bad = or_into(amask, ids, mask) < 0;
            }
            Py_XDECREF(mask);
            wanted = bad ? -1 : 1;
        }
        Py_XDECREF(ids);
        if (wanted < 0) goto fail;
    }
    distinct_clear(d);
    if (result == NULL) Py_RETURN_NONE;
    return result;
fail:
    distinct_clear(d);
    memset(words, 0, sizeof(uint64_t) * (size_t)(n / 64 + 1));
    Py_XDECREF(result);
    return NULL;
}

/* The positional arguments of a METH_FASTCALL function ``fn`` into out[]: ``lo`` to strlen(kinds)
 * of them, argument i of kind kinds[i] ('O' anything, 'L' list, 'D' dict, 'T' tuple, 'S' set,
 * 'Y' type; a subclass passes), as PyArg_ParseTuple's "O!" checks them, without its format
 * parsing (~500 instructions a call on the batch's four calls). 0, or -1 with a TypeError. */
static int unpack(const char *fn, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t lo, const char *kinds,
                  PyObject **out) {
    Py_ssize_t hi = (Py_ssize_t)strlen(kinds);
    if (nargs < lo || nargs > hi) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd to %zd arguments (%zd given)", fn, lo, hi, nargs);
        return -1;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        PyObject *arg = args[i];
        int ok;
        switch (kinds[i]) {
        case 'L': ok = PyList_Check(arg); break;
        case 'D': ok = PyDict_Check(arg); break;
        case 'T': ok = PyTuple_Check(arg); break;
        case 'S': ok = PySet_Check(arg); break;
        case 'Y': ok = PyType_Check(arg); break;
        default: ok = 1;
        }
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "%s() argument %zd has the wrong type: %.200s", fn, i + 1,
                         Py_TYPE(arg)->tp_name);
            return -1;
        }
        out[i] = arg;
    }
    return 0;
}

static int check_batch(PyObject *fields, PyObject *events, Py_ssize_t n) {
    if (fields != Py_None && (!PyList_Check(fields) || PyList_GET_SIZE(fields) != PyList_GET_SIZE(events))) {
        PyErr_SetString(PyExc_TypeError, "fold: fields must be None or a list as long as events");
        return -1;
    }
    if (n < 0 || PyList_GET_SIZE(events) != n) {
        PyErr_SetString(PyExc_ValueError, "fold: events must hold the batch's n rows");
        return -1;
    }
    return 0;
}

static PyObject *fold(PyObject *self, PyObject *args) {
    PyObject *fields, *events, *sel, *key, *attr, *cache, *missing, *amask;
    Py_ssize_t n;
    int how;
    if (!PyArg_ParseTuple(args, "OO!OnOOiO!OO!:fold", &fields, &PyList_Type, &events, &sel, &n, &key, &attr, &how,
                          &PyDict_Type, &cache, &missing, &PyDict_Type, &amask))
        return NULL;
    if (check_batch(fields, events, n) < 0 || check_read(fields, attr, how) < 0) return NULL;
    if (sel != Py_None && !PyList_Check(sel)) {
        PyErr_SetString(PyExc_TypeError, "fold: sel must be a list or None");
        return NULL;
    }
    Py_ssize_t m = sel == Py_None ? n : PyList_GET_SIZE(sel);
    Py_ssize_t *rows = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(m + 1));
    if (rows == NULL) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < m; i++) {
        rows[i] = sel == Py_None ? i : PyLong_AsSsize_t(PyList_GET_ITEM(sel, i));
        if (rows[i] == -1 && PyErr_Occurred()) {
            PyMem_Free(rows);
            return NULL;
        }
    }
    Scratch x;
    PyObject *out = scratch_init(&x, n) < 0 ? NULL : fold_rows(&x, fields, events, rows, m, n, key, attr, how, cache,
                                                                 missing, NULL, amask);
    scratch_free(&x);
    PyMem_Free(rows);
    return out;
}

/* Bitset ``mask`` (a non-negative int below 2**n) or-ed into words[0:n/64+1]. A negative int
 * raises OverflowError in either conversion (Py_SIZE no longer holds an int's sign from 3.12). */
static int or_words(PyObject *mask, Py_ssize_t n, uint64_t *words) {
    if (!PyLong_CheckExact(mask)) {
        PyErr_SetString(PyExc_TypeError, "fold_many: rows must be an int");
        return -1;
    }
    if (n <= 64) {
        unsigned long long word = PyLong_AsUnsignedLongLong(mask);
        if (word == (unsigned long long)-1 && PyErr_Occurred()) return -1;
        words[0] |= word;
        return 0;
    }
    PyObject *data = PyObject_CallMethod(mask, "to_bytes", "ns", (n + 7) / 8, "little");
    if (data == NULL) return -1;
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(data);
    for (Py_ssize_t i = 0; i < PyBytes_GET_SIZE(data); i++) words[i / 8] |= (uint64_t)bytes[i] << (8 * (i % 8));
    Py_DECREF(data);
    return 0;
}

/* Append (name, rows, misses) to ``rest``, rows the int of words[0:width]. */
static int put_rest(PyObject *rest, PyObject *name, const uint64_t *words, Py_ssize_t width, PyObject *misses) {
    PyObject *mask = mask_from_words(words, width), *item = mask == NULL ? NULL : PyTuple_Pack(3, name, mask, misses);
    int bad = item == NULL || PyList_Append(rest, item) < 0;
    Py_XDECREF(mask);
    Py_XDECREF(item);
    return bad ? -1 : 0;
}

/* Mark ``key`` (hash ``hash``) in ``carried`` if it is one of the plan's fields (``order``): 0 (one
 * of them or not), or below -1 on an error (distinct_find's). */
static int mark_key(Distinct *order, char *carried, PyObject *key, Py_hash_t hash) {
    Py_ssize_t j = distinct_find(order, key, hash);
    if (j >= 0) {
        carried[j] = 1;
        /* The events share their key objects (the decoder's, or the FieldMaps' cache): the field is
         * named by the event's own from here on, found by identity in the next rows. */
        if (order->value[j] != key && PyUnicode_CheckExact(key) && PyUnicode_CheckExact(order->value[j])) {
            Py_INCREF(key);
            Py_SETREF(order->value[j], key);
        }
    }
    return j < -1 ? (int)j : 0;
}

/* Which of the plan's fields (``order``) some event of the batch carries in ``fields`` (a key of
 * its dict or FieldMap, whatever the value: the set of every key of every event, by Python's hash
 * and equality), into ``carried``: one pass over the events' keys, each looked up among the plan's
 * ~30 fields, costs less than that set (~190 keys a 17-event batch). 0, or -1 on an error. */
static int mark_carried(PyObject *fields, Distinct *order, char *carried) {
    for (Py_ssize_t r = 0; r < PyList_GET_SIZE(fields); r++) {
        PyObject *row = PyList_GET_ITEM(fields, r), *key, *value;
        int status = 0;
        Py_INCREF(row);
        if (PyDict_CheckExact(row)) {
            Py_ssize_t pos = 0;
            Py_hash_t hash; /* (a key's hash as its dict keeps it; from 3.13 asked of the key: _compat.h) */
            while (status == 0 && compat_dict_next(row, &pos, &key, &value, &hash)) status = mark_key(order, carried, key, hash);
        } else if (is_fieldmap(row)) { /* its keys: exact str, their hash cached (the FieldMaps' key cache) */
            for (Py_ssize_t k = 0, size = fieldmap_api->size(row); status == 0 && k < size; k++) {
                key = fieldmap_api->key_at(row, k);
                Py_hash_t hash = PyObject_Hash(key);
                status = hash == -1 ? -2 : mark_key(order, carried, key, hash);
            }
        } else { /* (another mapping: every field read, as it says) */
            memset(carried, 1, (size_t)order->count);
            Py_DECREF(row);
            return 0;
        }
        Py_DECREF(row);
        if (status < 0) return -1;
    }
    return 0;
}

static PyObject *fold_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *a[7];
    if (unpack("fold_many", args, nargs, 7, "OLOODLD", a) < 0) return NULL;
    PyObject *fields = a[0], *events = a[1], *present = a[3], *reads = a[4], *plan = a[5], *amask = a[6];
    Py_ssize_t n = PyNumber_AsSsize_t(a[2], PyExc_OverflowError);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (check_batch(fields, events, n) < 0) return NULL;
    if (present != Py_None && !PyAnySet_Check(present)) {
        PyErr_SetString(PyExc_TypeError, "fold_many: present must be a set or None");
        return NULL;
    }
    /* The fields in first-seen order over the plan, each with the union of its rows. */
    Py_ssize_t width = n / 64 + 1, names = 0;
    for (Py_ssize_t p = 0; p < PyList_GET_SIZE(plan); p++) {
        PyObject *step = PyList_GET_ITEM(plan, p);
        if (!PyTuple_Check(step) || PyTuple_GET_SIZE(step) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(step, 1))) {
            PyErr_SetString(PyExc_TypeError, "fold_many: the plan is a list of (rows, names tuple)");
            return NULL;
        }
        names += PyTuple_GET_SIZE(PyTuple_GET_ITEM(step, 1));
    }
    Scratch x;
    Distinct order;
    memset(&order, 0, sizeof(order));
    PyObject *rest = PyList_New(0);
    Py_ssize_t *rows = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(64 * width)); /* (bits past n: refused) */
    uint64_t *step_words = PyMem_Calloc((size_t)width, sizeof(uint64_t));
    uint64_t *field_words = PyMem_Calloc((size_t)((names + 1) * width), sizeof(uint64_t));
    char *carried = NULL;
    int ok = scratch_init(&x, n) == 0 && distinct_init(&order, names) == 0;
    if (!ok || rest == NULL || rows == NULL || step_words == NULL || field_words == NULL) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t p = 0; p < PyList_GET_SIZE(plan); p++) {
        PyObject *step = PyList_GET_ITEM(plan, p), *list = PyTuple_GET_ITEM(step, 1);
        memset(step_words, 0, sizeof(uint64_t) * (size_t)width);
        if (or_words(PyTuple_GET_ITEM(step, 0), n, step_words) < 0) goto fail;
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(list); i++) {
            PyObject *name = PyTuple_GET_ITEM(list, i);
            Py_INCREF(name);
            Py_ssize_t j = distinct_index(&order, name);
            if (j < 0) goto fail;
            for (Py_ssize_t w = 0; w < width; w++) field_words[j * width + w] |= step_words[w];
        }
    }
    if (present == Py_None) {
        if ((carried = PyMem_Calloc((size_t)order.count + 1, 1)) == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        if (fields != Py_None && mark_carried(fields, &order, carried) < 0) goto fail;
    }
    for (Py_ssize_t j = 0; j < order.count; j++) {
        PyObject *name = order.value[j], *read = PyDict_GetItemWithError(reads, name), *attr, *cache, *missing, *refs,
                 *misses;
        uint64_t *words = field_words + j * width;
        int how;
        if (read == NULL) {
            if (PyErr_Occurred() || put_rest(rest, name, words, width, Py_None) < 0) goto fail;
            continue;
        }
        if (!PyTuple_Check(read) || PyTuple_GET_SIZE(read) < 4 || PyTuple_GET_SIZE(read) > 5 ||
            !PyLong_Check(PyTuple_GET_ITEM(read, 1)) ||
            !(PyDict_Check(PyTuple_GET_ITEM(read, 2)) || PyTuple_GET_ITEM(read, 2) == Py_None) ||
            (PyTuple_GET_SIZE(read) == 5 && !PyTuple_Check(PyTuple_GET_ITEM(read, 4)))) {
            PyErr_SetString(PyExc_TypeError, "fold_many: a read is (attr, how, cache, missing[, fieldrefs])");
            goto fail;
        }
        attr = PyTuple_GET_ITEM(read, 0), cache = PyTuple_GET_ITEM(read, 2), missing = PyTuple_GET_ITEM(read, 3);
        refs = PyTuple_GET_SIZE(read) == 5 ? PyTuple_GET_ITEM(read, 4) : NULL;
        how = (int)PyLong_AsLong(PyTuple_GET_ITEM(read, 1));
        if ((how == -1 && PyErr_Occurred()) || check_read(fields, attr, how) < 0) goto fail;
        if (how == READ_FIELD) {
            int has = present != Py_None ? PySet_Contains(present, name) : carried[j];
            if (has < 0) goto fail;
            if (!has) { /* no event carries it: every row reads None, which only "missing" atoms match */
                int some = PyObject_IsTrue(missing);
                if (some < 0) goto fail;
                if (some) {
                    PyObject *mask = mask_from_words(words, width);
                    int bad = mask == NULL || or_into(amask, missing, mask) < 0;
                    Py_XDECREF(mask);
                    if (bad) goto fail;
                }
                continue;
            }
        }
        Py_ssize_t m = 0;
        for (Py_ssize_t w = 0; w < width; w++)
            for (uint64_t word = words[w]; word; word &= word - 1) rows[m++] = w * 64 + __builtin_ctzll(word);
        misses = fold_rows(&x, fields, events, rows, m, n, name, attr, how, cache, missing, refs, amask);
        if (misses == NULL) goto fail;
        int bad = misses != Py_None && put_rest(rest, name, words, width, misses) < 0;
        Py_DECREF(misses);
        if (bad) goto fail;
    }
    goto done;
fail:
    Py_CLEAR(rest);
done:
    distinct_free(&order);
    scratch_free(&x);
    PyMem_Free(rows);
    PyMem_Free(step_words);
    PyMem_Free(field_words);
    PyMem_Free(carried);
    return rest;
}

/* The batch's rows grouped by their tuple of the events' attributes ``attrs`` into the scratch
 * (x->d: the distinct tuples; value j's rows sorted[start[j-1]..start[j])): 1, or 0 when a
 * value's type is not exactly one of its attribute's ``types``, -1 on an error. */
static int group_pairs(Scratch *x, PyObject *events, PyObject *attrs, PyObject *types) {
    Py_ssize_t n = PyList_GET_SIZE(events), width = PyTuple_GET_SIZE(attrs);
    if (PyTuple_GET_SIZE(types) != width) {
        PyErr_SetString(PyExc_ValueError, "pairs: one tuple of types per attribute");
        return -1;
    }
    for (Py_ssize_t a = 0; a < width; a++) {
        if (!PyUnicode_Check(PyTuple_GET_ITEM(attrs, a)) || !PyTuple_Check(PyTuple_GET_ITEM(types, a))) {
            PyErr_SetString(PyExc_TypeError, "pairs: attrs are str, types tuples of types");
            return -1;
        }
    }
    PyObject *small[4], **values = width <= 4 ? small : PyMem_Malloc(sizeof(PyObject *) * (size_t)width);
    if (values == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    int status = 1;
    for (Py_ssize_t r = 0; r < n && status == 1; r++) {
        PyObject *event = PyList_GET_ITEM(events, r);
        Py_ssize_t got = 0;
        Py_INCREF(event);
        for (; got < width && status == 1; got++) {
            PyObject *value = get_attr(event, PyTuple_GET_ITEM(attrs, got));
            PyObject *allowed = PyTuple_GET_ITEM(types, got);
            int ok = 0;
            if (value == NULL) { /* (an attribute that raised: the error) */
                status = -1;
                break;
            }
            values[got] = value;
            for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(allowed) && !ok; t++)
                ok = (PyObject *)Py_TYPE(value) == PyTuple_GET_ITEM(allowed, t);
            if (!ok) status = 0;
        }
        Py_DECREF(event);
        if (status == 1 && (x->code[r] = distinct_row(&x->d, values, width)) < 0) status = -1;
        for (Py_ssize_t a = 0; a < got; a++) Py_DECREF(values[a]);
    }
    if (values != small) PyMem_Free(values);
    if (status < 1) return status;
    Py_ssize_t k = x->d.count, *start = x->start, *sorted = x->sorted;
    memset(start, 0, sizeof(Py_ssize_t) * (size_t)(k + 1));
    for (Py_ssize_t r = 0; r < n; r++) start[x->code[r] + 1]++;
    for (Py_ssize_t j = 1; j <= k; j++) start[j] += start[j - 1];
    for (Py_ssize_t r = 0; r < n; r++) sorted[start[x->code[r]]++] = r;
    return 1;
}

/* The rows of group_pairs' tuple j, as an int. */
static PyObject *pair_rows(Scratch *x, Py_ssize_t j) {
    Py_ssize_t top = 0;
    for (Py_ssize_t s = j ? x->start[j - 1] : 0; s < x->start[j]; s++) {
        Py_ssize_t r = x->sorted[s];
        x->words[r >> 6] |= (uint64_t)1 << (r & 63);
        top = (r >> 6) + 1;
    }
    PyObject *mask = mask_from_words(x->words, top);
    memset(x->words, 0, sizeof(uint64_t) * (size_t)top);
    return mask;
}

/* group_pairs' tuples and their rows as a dict. */
static PyObject *pairs_dict(Scratch *x) {
    PyObject *result = PyDict_New();
    for (Py_ssize_t j = 0; result != NULL && j < x->d.count; j++) {
        PyObject *mask = pair_rows(x, j);
        if (mask == NULL || PyDict_SetItem(result, x->d.value[j], mask) < 0) Py_CLEAR(result);
        Py_XDECREF(mask);
    }
    return result;
}

/* pairs(events, attrs, types): {(getattr(ev, a) for a in attrs): int} over the batch, or None when
 * a value's type is not exactly one of its attribute's ``types``. */
static PyObject *pairs(PyObject *self, PyObject *args) {
    PyObject *events, *attrs, *types, *result = NULL;
    if (!PyArg_ParseTuple(args, "O!O!O!:pairs", &PyList_Type, &events, &PyTuple_Type, &attrs, &PyTuple_Type, &types))
        return NULL;
    Scratch x;
    if (scratch_init(&x, PyList_GET_SIZE(events)) == 0) {
        int grouped = group_pairs(&x, events, attrs, types);
        result = grouped > 0 ? pairs_dict(&x) : grouped == 0 ? (Py_INCREF(Py_None), Py_None) : NULL;
    }
    scratch_free(&x);
    return result;
}

/* amask[aid] |= mask for every aid of ``atoms``, ls_masks[index] |= mask and live[index] = 1 for
 * every index of ``holding`` (an entry of scorer.rules.heads.Heads.cache). */
static int apply_entry(PyObject *entry, PyObject *mask, PyObject *amask, PyObject *ls_masks, char *live) {
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(entry, 1))) {
        PyErr_SetString(PyExc_TypeError, "heads: an entry is (atoms, holding tuple)");
        return -1;
    }
    if (or_into(amask, PyTuple_GET_ITEM(entry, 0), mask) < 0) return -1;
    PyObject *holding = PyTuple_GET_ITEM(entry, 1);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(holding); i++) {
        Py_ssize_t index = PyLong_AsSsize_t(PyTuple_GET_ITEM(holding, i));
        if (index == -1 && PyErr_Occurred()) return -1;
        if (index < 0 || index >= PyList_GET_SIZE(ls_masks)) {
            PyErr_SetString(PyExc_IndexError, "heads: a logsource past ls_masks");
            return -1;
        }
        PyObject *after = PyNumber_Or(PyList_GET_ITEM(ls_masks, index), mask);
        if (after == NULL) return -1;
        PyList_SetItem(ls_masks, index, after); /* (steals after, drops the old int) */
        live[index] = 1;
    }
    return 0;
}

/* heads(events, attrs, types, cache, amask, ls_masks): scorer.rules.heads.Heads.masks with every
 * tuple of the batch in ``cache``: its atoms' rows or-ed into amask, its logsources' into ls_masks,
 * and the logsources that hold on some row returned, ascending. A tuple not in the cache: nothing
 * written, pairs()'s dict returned (for Python to work the new tuples out); pairs()'s None likewise. */
static PyObject *heads(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *a[6], *result = NULL;
    if (unpack("heads", args, nargs, 6, "LTTDDL", a) < 0) return NULL;
    PyObject *events = a[0], *attrs = a[1], *types = a[2], *cache = a[3], *amask = a[4], *ls_masks = a[5];
    Scratch x;
    char *live = PyMem_Calloc((size_t)PyList_GET_SIZE(ls_masks) + 1, 1);
    PyObject **entries = NULL;
    if (live == NULL || scratch_init(&x, PyList_GET_SIZE(events)) < 0) {
        PyMem_Free(live);
        return PyErr_NoMemory();
    }
    int grouped = group_pairs(&x, events, attrs, types);
    if (grouped <= 0) {
        result = grouped == 0 ? (Py_INCREF(Py_None), Py_None) : NULL;
        goto done;
    }
    if ((entries = PyMem_Malloc(sizeof(PyObject *) * (size_t)(x.d.count + 1))) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t j = 0; j < x.d.count; j++) { /* (borrowed: the cache is not changed below) */
        if ((entries[j] = PyDict_GetItemWithError(cache, x.d.value[j])) == NULL) {
            result = PyErr_Occurred() ? NULL : pairs_dict(&x);
            goto done;
        }
    }
    for (Py_ssize_t j = 0; j < x.d.count; j++) {
        PyObject *mask = pair_rows(&x, j);
        int bad = mask == NULL || apply_entry(entries[j], mask, amask, ls_masks, live) < 0;
        Py_XDECREF(mask);
        if (bad) goto done;
    }
    if ((result = PyList_New(0)) == NULL) goto done;
    for (Py_ssize_t index = 0; index < PyList_GET_SIZE(ls_masks); index++) {
        if (!live[index]) continue;
        PyObject *number = PyLong_FromSsize_t(index);
        int bad = number == NULL || PyList_Append(result, number) < 0;
        Py_XDECREF(number);
        if (bad) {
            Py_CLEAR(result);
            goto done;
        }
    }
done:
    PyMem_Free(entries);
    PyMem_Free(live);
    scratch_free(&x);
    return result;
}

/* *out |= value (*out NULL: value itself); 0, or -1 on an error. */
static int accumulate(PyObject **out, PyObject *value) {
    PyObject *after = *out == NULL ? (Py_INCREF(value), value) : PyNumber_Or(*out, value);
    if (after == NULL) return -1;
    Py_XSETREF(*out, after);
    return 0;
}

/* triggered(by_atom, amask, out): out.update(by_atom[aid]) for every aid of amask with rows. */
static PyObject *triggered(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *a[3], *aid, *rows;
    if (unpack("triggered", args, nargs, 3, "DDS", a) < 0) return NULL;
    PyObject *by_atom = a[0], *amask = a[1], *out = a[2];
    Py_ssize_t pos = 0;
    Py_hash_t hash; /* (the key's hash as amask keeps it; from 3.13 asked of the key) */
    while (compat_dict_next(amask, &pos, &aid, &rows, &hash)) {
        PyObject *trees = _PyDict_GetItem_KnownHash(by_atom, aid, hash);
        if (trees == NULL) {
            if (PyErr_Occurred()) return NULL;
            continue;
        }
        int some = PyObject_IsTrue(rows);
        if (some < 0) return NULL;
        if (!some) continue;
        PyObject *seq = PySequence_Fast(trees, "triggered: by_atom's values are sequences");
        if (seq == NULL) return NULL;
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
            if (PySet_Add(out, PySequence_Fast_GET_ITEM(seq, i)) < 0) {
                Py_DECREF(seq);
                return NULL;
            }
        }
        Py_DECREF(seq);
    }
    Py_RETURN_NONE;
}

/* or_of(amask, atoms): the or of amask[a] for every a of ``atoms`` (a set) that amask holds,
 * looking up the smaller side in the other (scorer.rules.bitsets' wide ``or``: a rule listing
 * hundreds of values, a batch's amask a few dozen atoms). */
static PyObject *or_of(PyObject *self, PyObject *args) {
    PyObject *amask, *atoms, *out = NULL, *key, *value;
    if (!PyArg_ParseTuple(args, "O!O:or_of", &PyDict_Type, &amask, &atoms)) return NULL;
    if (!PyAnySet_Check(atoms)) {
        PyErr_SetString(PyExc_TypeError, "or_of: atoms must be a set or frozenset");
        return NULL;
    }
    Py_ssize_t pos = 0;
    Py_INCREF(amask);
    Py_INCREF(atoms);
    if (PyDict_GET_SIZE(amask) <= PySet_GET_SIZE(atoms)) {
        while (PyDict_Next(amask, &pos, &key, &value)) {
            int has = PySet_Contains(atoms, key);
            if (has < 0 || (has && accumulate(&out, value) < 0)) goto fail;
        }
    } else {
        Py_hash_t hash;
        while (_PySet_NextEntry(atoms, &pos, &key, &hash)) {
            value = PyDict_GetItemWithError(amask, key);
            if (value == NULL ? PyErr_Occurred() != NULL : accumulate(&out, value) < 0) goto fail;
        }
    }
    Py_DECREF(amask);
    Py_DECREF(atoms);
    return out != NULL ? out : PyLong_FromLong(0);
fail:
    Py_DECREF(amask);
    Py_DECREF(atoms);
    Py_XDECREF(out);
    return NULL;
}

/* fire(candidates, rule_of, ls_of, code, ls_masks, get[, flat, n]) -> {rule number: int}: for
 * every variant vi of ``candidates`` (a set) whose logsource's rows ls_masks[ls_of[vi]] are not
 * empty, its tree over those rows, or-ed into its rule's (rule_of[vi]); the rules with rows
 * (scorer.rules.engine.RuleEngine's candidate loop, a Python frame's ~20 opcodes a variant).
 * The tree: flat[vi] walked here (_flat.h) when ``get`` is an amask's get (``n``: the batch's
 * rows, which every row set is within), else code[vi](get, rows), which also takes what the walk
 * refuses (a tree past its depth, rows that are no plain int of the batch); code[vi] may compile
 * itself at that first call (RuleEngine's deferred trees). */
static PyObject *fire(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *a[8] = {NULL, NULL, NULL, NULL, NULL, NULL, Py_None, Py_None}, *vi;
    if (unpack("fire", args, nargs, 6, "SLLLLOOO", a) < 0) return NULL;
    PyObject *candidates = a[0], *rule_of = a[1], *ls_of = a[2], *code = a[3], *ls_masks = a[4], *get = a[5];
    PyObject *flat = a[6];
    PyObject *amask = PyCFunction_Check(get) ? PyCFunction_GET_SELF(get) : NULL;
    Py_ssize_t n = a[7] == Py_None ? -1 : PyLong_AsSsize_t(a[7]);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (flat != Py_None && (!PyList_Check(flat) || amask == NULL || !PyDict_CheckExact(amask) || n < 0)) {
        PyErr_SetString(PyExc_TypeError, "fire: flat trees need a list, get an amask's get and n the batch's rows");
        return NULL;
    }
    /* (amask and ls_masks are not changed by this call: their rows are read once) */
    Py_ssize_t width = flat != Py_None && n > 64 ? (n + 63) / 64 : 1, pos = 0;
    Flat f;
    uint64_t two[2], *rows = NULL; /* a variant's rows, then its scope's: the flat walk's, NULL without it */
    PyObject *out = NULL;
    Py_INCREF(candidates);
    if (flat_init(&f, amask, width, PySet_GET_SIZE(candidates)) < 0 || (out = PyDict_New()) == NULL) goto fail;
    if (flat != Py_None && (rows = width == 1 ? two : PyMem_Malloc((size_t)(2 * width) * sizeof(uint64_t))) == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    Py_hash_t hash;
    while (_PySet_NextEntry(candidates, &pos, &vi, &hash)) {
        Py_ssize_t v = PyLong_AsSsize_t(vi), index;
        if (v == -1 && PyErr_Occurred()) goto fail;
        if (v < 0 || v >= PyList_GET_SIZE(rule_of) || v >= PyList_GET_SIZE(ls_of) || v >= PyList_GET_SIZE(code)) {
            PyErr_SetString(PyExc_IndexError, "fire: a variant past the pack's");
            goto fail;
        }
        index = PyLong_AsSsize_t(PyList_GET_ITEM(ls_of, v));
        if (index == -1 && PyErr_Occurred()) goto fail;
        if (index < 0 || index >= PyList_GET_SIZE(ls_masks)) {
            PyErr_SetString(PyExc_IndexError, "fire: a logsource past ls_masks");
            goto fail;
        }
        PyObject *scope = PyList_GET_ITEM(ls_masks, index), *number = PyList_GET_ITEM(rule_of, v);
        int some = PyObject_IsTrue(scope);
        if (some < 0) goto fail;
        if (!some) continue;
        PyObject *tree = PyList_GET_ITEM(code, v), *fired = NULL;
        Py_INCREF(scope); /* (all three held through the call, whatever it does to the lists) */
        Py_INCREF(number);
        Py_INCREF(tree);
        int ok = 0;
        if (rows != NULL && v < PyList_GET_SIZE(flat)) {
            /* (a scope is an int the call holds: a key of the table too; its words copied, as the
             * table's move when it grows) */
            const uint64_t *words = flat_value(&f, scope);
            if (words == NULL) ok = PyErr_Occurred() ? -1 : 0;
            else {
                words_copy(rows + f.width, words, f.width);
                PyObject *node = PyList_GET_ITEM(flat, v);
                Py_INCREF(node);
                ok = flat_eval(&f, node, rows + f.width, rows, 0);
                Py_DECREF(node);
                if (ok > 0) fired = mask_from_words(rows, f.width);
            }
        }
        if (ok == 0) {
            PyObject *call[2] = {get, scope};
            fired = PyObject_Vectorcall(tree, call, 2, NULL);
        }
        Py_DECREF(tree);
        Py_DECREF(scope);
        int bad = fired == NULL || (some = PyObject_IsTrue(fired)) < 0;
        if (!bad && some) {
            PyObject *before = PyDict_SetDefault(out, number, fired), *after;
            if (before == NULL) bad = 1;
            else if (before != fired) {
                Py_INCREF(before);
                after = PyNumber_Or(before, fired);
                Py_DECREF(before);
                bad = after == NULL || PyDict_SetItem(out, number, after) < 0;
                Py_XDECREF(after);
            }
        }
        Py_XDECREF(fired);
        Py_DECREF(number);
        if (bad) goto fail;
    }
    Py_DECREF(candidates);
    if (rows != two) PyMem_Free(rows);
    flat_free(&f);
    return out;
fail:
    Py_DECREF(candidates);
    Py_XDECREF(out);
    if (rows != two) PyMem_Free(rows);
    flat_free(&f);
    return NULL;
}

/* events_of(items, classes) -> [event] | None: the first item of every (event, record) tuple of
 * ``items`` when every event's type is exactly one of ``classes`` (a tuple of types: the rules
 * stage's batches); None for anything else, which the caller looks at item by item
 * (scorer.pipeline.rules.apply_rules). */
static PyObject *events_of(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    PyObject *a[2];
    if (unpack("events_of", args, nargs, 2, "LT", a) < 0) return NULL;
    PyObject *items = a[0], *classes = a[1];
    Py_ssize_t n = PyList_GET_SIZE(items), k = PyTuple_GET_SIZE(classes);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        PyObject *event = PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) >= 1 ? PyTuple_GET_ITEM(item, 0) : NULL;
        Py_ssize_t c = 0;
        while (event != NULL && c < k && (PyObject *)Py_TYPE(event) != PyTuple_GET_ITEM(classes, c)) c++;
        if (event == NULL || c == k) {
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
        Py_INCREF(event);
        PyList_SET_ITEM(out, i, event);
    }
    return out;
}

/* amask() -> {}: an empty dict sized for a batch's atoms (~50 at 17 events: no resizes on the way). */
static PyObject *amask(PyObject *self, PyObject *Py_UNUSED(args)) { return _PyDict_NewPresized(64); }

#define FAST(f) ((PyCFunction)(void (*)(void))(f)) /* (a METH_FASTCALL function in the table) */

static PyMethodDef methods[] = {
    {"fire", FAST(fire), METH_FASTCALL, "The rows of each rule some candidate variant fires on."},
    {"amask", amask, METH_NOARGS, "An empty dict sized for a batch's atoms."},
    {"events_of", FAST(events_of), METH_FASTCALL, "The events of items, each of one of the exact types."},
    {"or_of", or_of, METH_VARARGS, "The or of an amask's rows over a set of atoms."},
    {"fold", fold, METH_VARARGS, "A rule engine field's column read, grouping and cached atoms' bitsets in one pass."},
    {"fold_many", FAST(fold_many), METH_FASTCALL, "fold for every field of a batch that has a read."},
    {"pairs", pairs, METH_VARARGS, "The rows (bitsets) of each distinct tuple of some attributes of the events."},
    {"heads", FAST(heads), METH_FASTCALL, "A batch's head atoms' and logsources' rows."},
    {"triggered", FAST(triggered), METH_FASTCALL, "The trees some atom with rows triggers, added to a set."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_rules", "The Sigma rule engine's per-field pass.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__rules(void) {
    fieldmap_import(); /* the events' FieldMaps read through its C API (else through their get) */
    lower_name = PyUnicode_InternFromString("lower");
    return lower_name == NULL ? NULL : PyModule_Create(&module);
}

/* scorer.native._kafka: the producer's per-record work for a whole batch of outputs.
 *
 * place(records, parts) -> {(topic, partition): [record, ...]} | [topic, ...]
 *     Each record where send() would put it, grouped per (topic, partition) in first-seen
 *     order, each group in the records' order: its own ``partition`` when not None, else by
 *     ``key`` with Kafka's default partitioner ((murmur2(key) & 0x7fffffff) % n into the
 *     topic's sorted partitions ``parts[topic]``), a keyless one round-robin by its index in
 *     ``records``. Where ``parts`` lacks topics that records need, the list of them instead
 *     (the caller asks the producer for them and calls again). The reference is scorer.kafka.producer._by_partition.
 *
 * fill(append, records, start, offset) -> int
 *     ``append(offset + j, None, key, value, headers)`` (aiokafka's DefaultRecordBatchBuilder
 *     append: relative offset, timestamp now) for records[start + j] until one returns None
 *     (the batch is full); returns how many were appended. Headers go as a list, as the
 *     builder takes them. The reference is scorer.kafka.producer._append_each.
 *
 * Both read ``topic``, ``key``, ``value``, ``headers`` and ``partition`` as attributes (any
 * object: OutputRecord structs, dataclasses).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *s_topic, *s_key, *s_value, *s_headers, *s_partition, *no_headers;

static uint32_t murmur2(const unsigned char *data, Py_ssize_t length) {
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)length;
    Py_ssize_t whole = length & ~(Py_ssize_t)3;
    for (Py_ssize_t i = 0; i < whole; i += 4) {
        uint32_t k = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 | (uint32_t)data[i + 2] << 16 |
                     (uint32_t)data[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (length & 3) {
    case 3: h ^= (uint32_t)data[whole + 2] << 16; /* fall through */
    case 2: h ^= (uint32_t)data[whole + 1] << 8;  /* fall through */
    case 1: h ^= (uint32_t)data[whole]; h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

/* The partition (a new reference) of a record without one, from its topic's sorted
 * partitions ``list``. */
static PyObject *placed(PyObject *record, PyObject *topic, PyObject *list, Py_ssize_t index) {
    if (!PyList_Check(list) || PyList_GET_SIZE(list) == 0) {
        PyErr_Format(PyExc_ValueError, "place: the partitions of %R must be a non-empty list", topic);
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(list), j;
    PyObject *key = PyObject_GetAttr(record, s_key);
    if (key == NULL) return NULL;
    if (key == Py_None) {
        j = index % n;
    } else {
        Py_buffer view;
        if (PyObject_GetBuffer(key, &view, PyBUF_SIMPLE) < 0) {
            Py_DECREF(key);
            return NULL;
        }
        j = (Py_ssize_t)((murmur2((const unsigned char *)view.buf, view.len) & 0x7fffffffu) % (uint32_t)n);
        PyBuffer_Release(&view);
    }
    Py_DECREF(key);
    return Py_NewRef(PyList_GET_ITEM(list, j));
}

/* Append ``record`` to out[(topic, partition)]; -1 with an error. */
static int group(PyObject *out, PyObject *topic, PyObject *partition, PyObject *record) {
    PyObject *where = PyTuple_Pack(2, topic, partition);
    if (where == NULL) return -1;
    PyObject *rows = PyDict_GetItemWithError(out, where); /* borrowed */
    int bad = 0;
    if (rows == NULL) {
        if (PyErr_Occurred() || (rows = PyList_New(0)) == NULL) {
            Py_DECREF(where);
            return -1;
        }
        bad = PyDict_SetItem(out, where, rows);
        Py_DECREF(rows); /* the dict holds it */
    }
    Py_DECREF(where);
    return bad < 0 ? -1 : PyList_Append(rows, record);
}

/* Once a topic is missing, the rest of the records are only scanned for more missing topics. */
static PyObject *place(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *records, *parts;
    if (!PyArg_ParseTuple(args, "OO!", &records, &PyDict_Type, &parts)) return NULL;
    PyObject *seq = PySequence_Fast(records, "place: records must be a sequence");
    if (seq == NULL) return NULL;
    PyObject *out = PyDict_New(), *missing = NULL, *topic = NULL, *partition = NULL;
    if (out == NULL) goto fail;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *record = PySequence_Fast_GET_ITEM(seq, i);
        if ((topic = PyObject_GetAttr(record, s_topic)) == NULL) goto fail;
        if ((partition = PyObject_GetAttr(record, s_partition)) == NULL) goto fail;
        if (partition == Py_None) {
            PyObject *list = PyDict_GetItemWithError(parts, topic); /* borrowed */
            Py_CLEAR(partition);
            if (list == NULL) {
                if (PyErr_Occurred()) goto fail;
                if (missing == NULL && (missing = PyList_New(0)) == NULL) goto fail;
                int known = PySequence_Contains(missing, topic);
                if (known < 0 || (!known && PyList_Append(missing, topic) < 0)) goto fail;
            } else if (missing == NULL && (partition = placed(record, topic, list, i)) == NULL) {
                goto fail;
            }
        }
        if (missing == NULL && group(out, topic, partition, record) < 0) goto fail;
        Py_CLEAR(topic);
        Py_CLEAR(partition);
    }
    Py_DECREF(seq);
    if (missing != NULL) {
        Py_DECREF(out);
        return missing;
    }
    return out;
fail:
    Py_XDECREF(topic);
    Py_XDECREF(partition);
    Py_XDECREF(missing);
    Py_XDECREF(out);
    Py_DECREF(seq);
    return NULL;
}

/* append(offset, None, key, value, headers) for one record: the builder's answer (None: full). */
static PyObject *append_one(PyObject *append, PyObject *record, long long offset) {
    PyObject *call[6] = {NULL, NULL, Py_None, NULL, NULL, NULL}, *headers = NULL, *metadata = NULL;
    int some;
    if ((call[1] = PyLong_FromLongLong(offset)) == NULL || (call[3] = PyObject_GetAttr(record, s_key)) == NULL ||
        (call[4] = PyObject_GetAttr(record, s_value)) == NULL ||
        (headers = PyObject_GetAttr(record, s_headers)) == NULL || (some = PyObject_IsTrue(headers)) < 0)
        goto done;
    /* A shared empty list for the common record without headers: the builder only reads it. */
    call[5] = some ? PySequence_List(headers) : Py_NewRef(no_headers);
    if (call[5] != NULL) metadata = PyObject_Vectorcall(append, call + 1, 5 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
done:
    Py_XDECREF(headers);
    Py_XDECREF(call[1]);
    Py_XDECREF(call[3]);
    Py_XDECREF(call[4]);
    Py_XDECREF(call[5]);
    return metadata;
}

static PyObject *fill(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *append, *records;
    Py_ssize_t start;
    long long offset;
    if (!PyArg_ParseTuple(args, "OO!nL", &append, &PyList_Type, &records, &start, &offset)) return NULL;
    Py_ssize_t done = 0;
    for (Py_ssize_t i = start < 0 ? 0 : start; i < PyList_GET_SIZE(records); i++, done++) {
        PyObject *metadata = append_one(append, PyList_GET_ITEM(records, i), offset + done);
        if (metadata == NULL) return NULL;
        int full = metadata == Py_None;
        Py_DECREF(metadata);
        if (full) break;
    }
    return PyLong_FromSsize_t(done);
}

static PyMethodDef methods[] = {
    {"place", place, METH_VARARGS, "The records grouped per (topic, partition) where send() puts them."},
    {"fill", fill, METH_VARARGS, "Append records to a record batch builder until it is full; how many."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kafka", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kafka(void) {
    if ((s_topic = PyUnicode_InternFromString("topic")) == NULL) return NULL;
    if ((s_key = PyUnicode_InternFromString("key")) == NULL) return NULL;
    if ((s_value = PyUnicode_InternFromString("value")) == NULL) return NULL;
    if ((s_headers = PyUnicode_InternFromString("headers")) == NULL) return NULL;
    if ((s_partition = PyUnicode_InternFromString("partition")) == NULL) return NULL;
    if ((no_headers = PyList_New(0)) == NULL) return NULL;
    return PyModule_Create(&module);
}

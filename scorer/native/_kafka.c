/* scorer.native._kafka: the producer's per-record work for a whole batch of outputs.
 *
 * place(records, parts) -> {(topic, partition): [record, ...]} | [topic, ...]
 *     Each record where send() would put it, grouped per (topic, partition) in first-seen
 *     order, each group in the records' order: its own ``partition`` when not None, else by
 *     ``key`` with Kafka's default partitioner ((murmur2(key) & 0x7fffffff) % n into the
 *     topic's sorted partitions ``parts[topic]``), a keyless one round-robin by its index in
 *     ``records``. Where ``parts`` lacks topics that records need, the list of them instead
 *     (the caller asks the producer for them and calls again). The reference is
 *     scorer.kafka.producer._by_partition_each.
 *
 * fill(append, records, start, offset) -> int
 *     ``append(offset + j, None, key, value, headers)`` (aiokafka's DefaultRecordBatchBuilder
 *     append: relative offset, timestamp now) for records[start + j] until one returns None
 *     (the batch is full); returns how many were appended. Headers go as a list, as the
 *     builder takes them. The reference is scorer.kafka.producer._append_each.
 *
 * Both read ``topic``, ``key``, ``value``, ``headers`` and ``partition`` of any object. Of a
 * type whose attributes are plain slots (msgspec Structs such as OutputRecord), straight
 * from the slot: what the generic lookup returns, without its ~160 instructions a read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>

#include "_murmur2.h" /* Kafka's default partitioner's hash */

/* Attributes read of many objects of one type: where each one's value is (-1: the generic
 * lookup). Of a type with the generic attribute lookup, a member descriptor (a slot: msgspec
 * Structs such as OutputRecord) is read from the slot, a getset descriptor (Cython's cdef
 * classes: aiokafka's DefaultRecord) through its getter: both are data descriptors, which
 * win over any instance dict, so the value is the generic lookup's without its ~160
 * instructions a read. The last type read is cached, a reference held so that no other
 * type can reuse its address meanwhile. */
#define MAX_ATTRS 5
typedef struct {
    PyObject *names[MAX_ATTRS];
    PyTypeObject *type;
    Py_ssize_t offsets[MAX_ATTRS];
    int slot_kinds[MAX_ATTRS];
    PyGetSetDef *getsets[MAX_ATTRS];
} Reader;

enum { A_TOPIC, A_KEY, A_VALUE, A_HEADERS, A_PARTITION };          /* of an output record */
enum { R_OFFSET, R_TIMESTAMP, R_KEY, R_VALUE, R_HEADERS };         /* of a fetched record */
static Reader outputs, fetched;
static PyObject *no_headers;

static void learn(Reader *reader, PyTypeObject *type) {
    Py_XSETREF(reader->type, (PyTypeObject *)Py_NewRef(type));
    for (int a = 0; a < MAX_ATTRS; a++) {
        reader->offsets[a] = -1;
        reader->getsets[a] = NULL;
        if (type->tp_getattro != PyObject_GenericGetAttr) continue;
        PyObject *descr = _PyType_Lookup(type, reader->names[a]);
        if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
            PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
            if (member->type == T_OBJECT_EX || member->type == T_OBJECT) {
                reader->offsets[a] = member->offset;
                reader->slot_kinds[a] = member->type;
            }
        } else if (descr != NULL && Py_IS_TYPE(descr, &PyGetSetDescr_Type)) {
            PyGetSetDef *getset = ((PyGetSetDescrObject *)descr)->d_getset;
            if (getset->get != NULL) reader->getsets[a] = getset;
        }
    }
}

/* obj.<reader->names[a]>, a new reference (NULL with an error). */
static PyObject *attr(Reader *reader, PyObject *obj, int a) {
    if (Py_TYPE(obj) != reader->type) learn(reader, Py_TYPE(obj));
    if (reader->offsets[a] >= 0) {
        PyObject *value = *(PyObject **)((char *)obj + reader->offsets[a]);
        if (value != NULL) return Py_NewRef(value);
        if (reader->slot_kinds[a] == T_OBJECT) return Py_NewRef(Py_None);
    } else if (reader->getsets[a] != NULL) {
        return reader->getsets[a]->get(obj, reader->getsets[a]->closure);
    }
    return PyObject_GetAttr(obj, reader->names[a]); /* an unset T_OBJECT_EX slot: its AttributeError */
}


/* One topic of a place() call: its sorted partitions and, per index into them, its group
 * (borrowed from the output dict), so that a placed record needs no (topic, partition) key. */
typedef struct {
    PyObject *topic; /* held: a record's attribute may be made anew at each read */
    PyObject *parts; /* borrowed from the caller's dict */
    PyObject **groups;
} Topic;

typedef struct {
    PyObject *out, *parts, *missing;
    Topic *topics;
    Py_ssize_t n_topics, cap;
} Placing;

/* The group list of (topic, partition) in out, created (in first-seen order) if new. */
static PyObject *group_of(PyObject *out, PyObject *topic, PyObject *partition) {
    PyObject *where = PyTuple_Pack(2, topic, partition);
    if (where == NULL) return NULL;
    PyObject *rows = PyDict_GetItemWithError(out, where); /* borrowed */
    if (rows == NULL && !PyErr_Occurred() && (rows = PyList_New(0)) != NULL) {
        int bad = PyDict_SetItem(out, where, rows);
        Py_DECREF(rows); /* the dict holds it */
        if (bad < 0) rows = NULL;
    }
    Py_DECREF(where);
    return rows;
}

/* The topic's entry, added on first sight (its groups NULL where ``parts`` lacks it). */
static Topic *topic_of(Placing *p, PyObject *topic) {
    for (Py_ssize_t t = 0; t < p->n_topics; t++) {
        if (p->topics[t].topic == topic) return &p->topics[t];
    }
    for (Py_ssize_t t = 0; t < p->n_topics; t++) {
        int same = PyObject_RichCompareBool(p->topics[t].topic, topic, Py_EQ);
        if (same < 0) return NULL;
        if (same) return &p->topics[t];
    }
    if (p->n_topics == p->cap) {
        Py_ssize_t cap = p->cap ? p->cap * 2 : 8;
        Topic *grown = PyMem_Realloc(p->topics, (size_t)cap * sizeof(Topic));
        if (grown == NULL) return (Topic *)PyErr_NoMemory();
        p->topics = grown;
        p->cap = cap;
    }
    Topic *entry = &p->topics[p->n_topics];
    entry->topic = Py_NewRef(topic);
    entry->parts = PyDict_GetItemWithError(p->parts, topic);
    entry->groups = NULL;
    p->n_topics++;
    if (entry->parts == NULL && PyErr_Occurred()) return NULL;
    if (entry->parts != NULL) {
        if (!PyList_Check(entry->parts) || PyList_GET_SIZE(entry->parts) == 0) {
            PyErr_Format(PyExc_ValueError, "place: the partitions of %R must be a non-empty list", topic);
            return NULL;
        }
        entry->groups = PyMem_Calloc((size_t)PyList_GET_SIZE(entry->parts), sizeof(PyObject *));
        if (entry->groups == NULL) return (Topic *)PyErr_NoMemory();
    }
    return entry;
}

/* Place record ``i``: 0, or -1 with an error. */
static int place_one(Placing *p, PyObject *record, Py_ssize_t i) {
    PyObject *topic = attr(&outputs, record, A_TOPIC), *partition = NULL, *key = NULL, *rows = NULL;
    int result = -1;
    if (topic == NULL || (partition = attr(&outputs, record, A_PARTITION)) == NULL) goto done;
    if (partition != Py_None) { /* its own partition */
        if (p->missing == NULL && ((rows = group_of(p->out, topic, partition)) == NULL ||
                                   PyList_Append(rows, record) < 0))
            goto done;
        result = 0;
        goto done;
    }
    Topic *entry = topic_of(p, topic);
    if (entry == NULL) goto done;
    if (entry->groups == NULL) { /* not in parts: asked for, the rest only scanned for more */
        if (p->missing == NULL && (p->missing = PyList_New(0)) == NULL) goto done;
        int listed = PySequence_Contains(p->missing, topic);
        result = listed < 0 || (!listed && PyList_Append(p->missing, topic) < 0) ? -1 : 0;
        goto done;
    }
    if (p->missing != NULL) {
        result = 0;
        goto done;
    }
    Py_ssize_t n = PyList_GET_SIZE(entry->parts), j;
    if ((key = attr(&outputs, record, A_KEY)) == NULL) goto done;
    if (key == Py_None) {
        j = i % n;
    } else {
        Py_buffer view;
        if (PyObject_GetBuffer(key, &view, PyBUF_SIMPLE) < 0) goto done;
        j = (Py_ssize_t)((murmur2((const unsigned char *)view.buf, view.len) & 0x7fffffffu) % (uint32_t)n);
        PyBuffer_Release(&view);
    }
    if (entry->groups[j] == NULL &&
        (entry->groups[j] = group_of(p->out, topic, PyList_GET_ITEM(entry->parts, j))) == NULL)
        goto done;
    result = PyList_Append(entry->groups[j], record);
done:
    Py_XDECREF(topic);
    Py_XDECREF(partition);
    Py_XDECREF(key);
    return result;
}

static PyObject *place(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *records;
    Placing p = {NULL, NULL, NULL, NULL, 0, 0};
    if (!PyArg_ParseTuple(args, "OO!", &records, &PyDict_Type, &p.parts)) return NULL;
    PyObject *seq = PySequence_Fast(records, "place: records must be a sequence"), *result = NULL;
    if (seq == NULL || (p.out = PyDict_New()) == NULL) goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), i;
    for (i = 0; i < n; i++) {
        if (place_one(&p, PySequence_Fast_GET_ITEM(seq, i), i) < 0) break;
    }
    if (i == n) result = Py_NewRef(p.missing != NULL ? p.missing : p.out);
done:
    for (Py_ssize_t t = 0; t < p.n_topics; t++) {
        Py_DECREF(p.topics[t].topic);
        PyMem_Free(p.topics[t].groups);
    }
    PyMem_Free(p.topics);
    Py_XDECREF(p.missing);
    Py_XDECREF(p.out);
    Py_XDECREF(seq);
    return result;
}

/* append(offset, None, key, value, headers) for one record: the builder's answer (None: full). */
static PyObject *append_one(PyObject *append, PyObject *record, long long offset) {
    PyObject *call[6] = {NULL, NULL, Py_None, NULL, NULL, NULL}, *headers = NULL, *metadata = NULL;
    int some;
    if ((call[1] = PyLong_FromLongLong(offset)) == NULL || (call[3] = attr(&outputs, record, A_KEY)) == NULL ||
        (call[4] = attr(&outputs, record, A_VALUE)) == NULL || (headers = attr(&outputs, record, A_HEADERS)) == NULL ||
        (some = PyObject_IsTrue(headers)) < 0)
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

/* inputs(records, topic, partition, topic_kind, kind_of, input_type) -> list:
 * input_type(kind, value, key, topic, partition, offset, timestamp) of each record
 * (aiokafka's DefaultRecord, or anything with those attributes), kind being topic_kind, or
 * kind_of(headers, topic_kind) for a record with headers. The reference is
 * scorer.pipeline.source._inputs. */
static PyObject *inputs(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *records, *topic, *partition, *topic_kind, *kind_of, *input_type;
    if (!PyArg_ParseTuple(args, "OUO!OOO", &records, &topic, &PyLong_Type, &partition, &topic_kind, &kind_of,
                          &input_type))
        return NULL;
    PyObject *it = PyObject_GetIter(records), *out = PyList_New(0), *record;
    if (it == NULL || out == NULL) goto fail;
    while ((record = PyIter_Next(it)) != NULL) {
        /* call[0]: vectorcall's scratch slot; kind, value, key, offset and timestamp are owned */
        PyObject *call[8] = {NULL, NULL, NULL, NULL, topic, partition, NULL, NULL};
        PyObject *headers = NULL, *built = NULL;
        int some = -1;
        if ((call[6] = attr(&fetched, record, R_OFFSET)) != NULL && (call[7] = attr(&fetched, record, R_TIMESTAMP)) != NULL &&
            (call[2] = attr(&fetched, record, R_VALUE)) != NULL && (call[3] = attr(&fetched, record, R_KEY)) != NULL &&
            (headers = attr(&fetched, record, R_HEADERS)) != NULL && (some = PyObject_IsTrue(headers)) >= 0 &&
            (call[1] = some ? PyObject_CallFunctionObjArgs(kind_of, headers, topic_kind, NULL) : Py_NewRef(topic_kind)) != NULL &&
            (built = PyObject_Vectorcall(input_type, call + 1, 7 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL)) != NULL &&
            PyList_Append(out, built) < 0)
            Py_CLEAR(built);
        for (int a = 1; a < 4; a++) Py_XDECREF(call[a]);
        Py_XDECREF(call[6]);
        Py_XDECREF(call[7]);
        Py_XDECREF(headers);
        Py_DECREF(record);
        if (built == NULL) goto fail;
        Py_DECREF(built);
    }
    if (PyErr_Occurred()) goto fail;
    Py_DECREF(it);
    return out;
fail:
    Py_XDECREF(it);
    Py_XDECREF(out);
    return NULL;
}

/* ---- Batch: a record batch (magic v2, uncompressed) written here ------------------------
 *
 * What aiokafka's BatchBuilder (around its Cython DefaultRecordBatchBuilder) makes of records
 * appended with timestamp None, byte for byte but for the timestamps (one clock read per
 * fill() rather than per record), with the methods its producer's accumulator and sender
 * call: record_count, size, closed, close, _set_producer_state, _build; append (the
 * accumulator's per-message path) always answers "full". Its
 * builder's per-record call (~3,000 instructions) and table CRC32C (~8 a byte) were a third
 * of the Kafka client's instructions per event (docs/benchmarks.md section 32).
 */
#include <time.h>

#define HEADER 61 /* a v2 batch's header; the records follow */

static uint32_t crc_table[256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32c_table(uint32_t crc, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p, size_t n) {
    uint64_t c = crc;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __builtin_ia32_crc32di(c, word);
    }
    for (; n > 0; n--, p++) c = __builtin_ia32_crc32qi((uint32_t)c, *p);
    return (uint32_t)c;
}
#endif

/* CRC-32C (Castagnoli), as Kafka's batch checksum. */
static uint32_t crc32c(const unsigned char *p, size_t n) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    if (__builtin_cpu_supports("sse4.2")) return ~crc32c_sse42(0xffffffffu, p, n);
#endif
    return ~crc32c_table(0xffffffffu, p, n);
}

static int varint_size(int64_t v) {
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    int n = 1;
    while (z >= 0x80) {
        z >>= 7;
        n++;
    }
    return n;
}

static char *put_varint(char *p, int64_t v) { /* Kafka's zigzag varint */
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    while (z >= 0x80) {
        *p++ = (char)(z | 0x80);
        z >>= 7;
    }
    *p++ = (char)z;
    return p;
}

static void put_be(char *p, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--, v >>= 8) p[i] = (char)(v & 0xff);
}

#define INITIAL_CAP 65536

typedef struct {
    PyObject_HEAD
    PyObject *buf; /* a bytearray: the whole batch, header included; its bytes once built */
    Py_ssize_t len, cap, batch_size;
    int transactional, closed;
    int32_t count;
    int64_t first_ts, max_ts, producer_id;
    int32_t epoch, base_sequence;
    PyObject *built; /* the bytearray, once built */
} Batch;

static int Batch_init(Batch *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"batch_size", "transactional", NULL};
    int transactional = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "n|p", kwlist, &self->batch_size, &transactional)) return -1;
    /* Grown by doubling from here: a batch's bytes are copied on each growth, and a scoring
     * batch's alerts fill hundreds of KB per partition. Pages untouched are not paid for. */
    self->cap = INITIAL_CAP;
    Py_CLEAR(self->buf);
    if ((self->buf = PyByteArray_FromStringAndSize(NULL, self->cap)) == NULL) return -1;
    self->len = HEADER;
    self->transactional = transactional;
    self->closed = 0;
    self->count = 0;
    self->first_ts = self->max_ts = -1;
    self->producer_id = -1;
    self->epoch = -1;
    self->base_sequence = 0;
    Py_CLEAR(self->built);
    return 0;
}

static void Batch_dealloc(Batch *self) {
    Py_XDECREF(self->buf);
    Py_XDECREF(self->built);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A byte string's bytes, or none for None (length -1); -2 with an error. */
static Py_ssize_t bytes_of(PyObject *obj, Py_buffer *view) {
    if (obj == Py_None) return -1;
    return PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0 ? -2 : view->len;
}

/* Append one record at ``ts``: 1, 0 when it does not fit (the batch is full), -1 with an error. */
static int Batch_put(Batch *self, PyObject *record, int64_t ts) {
    PyObject *key = attr(&outputs, record, A_KEY), *value = NULL, *headers = NULL, *seq = NULL;
    Py_buffer kv = {0}, vv = {0};
    Py_ssize_t klen = -2, vlen = -2, n_headers = 0;
    int result = -1;
    if (key == NULL || (value = attr(&outputs, record, A_VALUE)) == NULL ||
        (headers = attr(&outputs, record, A_HEADERS)) == NULL)
        goto done;
    if ((klen = bytes_of(key, &kv)) == -2 || (vlen = bytes_of(value, &vv)) == -2) goto done;
    if (headers != Py_None) {
        if ((seq = PySequence_Fast(headers, "record headers must be a sequence")) == NULL) goto done;
        n_headers = PySequence_Fast_GET_SIZE(seq);
    }
    int64_t ts_delta = self->count ? ts - self->first_ts : 0, offset_delta = self->count;
    Py_ssize_t body = 1 + varint_size(ts_delta) + varint_size(offset_delta) + varint_size(klen) + (klen > 0 ? klen : 0) +
                      varint_size(vlen) + (vlen > 0 ? vlen : 0) + varint_size(n_headers);
    for (Py_ssize_t h = 0; h < n_headers; h++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, h), *hk, *hv;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyUnicode_Check(hk = PyTuple_GET_ITEM(pair, 0))) {
            PyErr_SetString(PyExc_TypeError, "a record header must be a (str, bytes | None) tuple");
            goto done;
        }
        Py_ssize_t hklen;
        if (PyUnicode_AsUTF8AndSize(hk, &hklen) == NULL) goto done;
        hv = PyTuple_GET_ITEM(pair, 1);
        Py_ssize_t hvlen = hv == Py_None ? -1 : PyObject_Length(hv);
        if (hvlen < -1 || (hvlen == -1 && hv != Py_None)) goto done;
        body += varint_size(hklen) + hklen + varint_size(hvlen) + (hvlen > 0 ? hvlen : 0);
    }
    Py_ssize_t size = varint_size(body) + body;
    if (self->count != 0 && self->len + size >= self->batch_size) { /* aiokafka's rule */
        result = 0;
        goto done;
    }
    if (self->len + size > self->cap) {
        Py_ssize_t cap = self->cap;
        while (cap < self->len + size) cap *= 2;
        if (PyByteArray_Resize(self->buf, cap) < 0) goto done;
        self->cap = cap;
    }
    char *p = PyByteArray_AS_STRING(self->buf) + self->len;
    p = put_varint(p, body);
    *p++ = 0; /* attributes */
    p = put_varint(p, ts_delta);
    p = put_varint(p, offset_delta);
    p = put_varint(p, klen);
    if (klen > 0) memcpy(p, kv.buf, (size_t)klen), p += klen;
    p = put_varint(p, vlen);
    if (vlen > 0) memcpy(p, vv.buf, (size_t)vlen), p += vlen;
    p = put_varint(p, n_headers);
    for (Py_ssize_t h = 0; h < n_headers; h++) {
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, h), *hv = PyTuple_GET_ITEM(pair, 1);
        Py_ssize_t hklen;
        const char *hk = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(pair, 0), &hklen);
        p = put_varint(p, hklen);
        memcpy(p, hk, (size_t)hklen), p += hklen;
        if (hv == Py_None) {
            p = put_varint(p, -1);
        } else {
            Py_buffer hb;
            if (PyObject_GetBuffer(hv, &hb, PyBUF_SIMPLE) < 0) goto done; /* the batch is not extended */
            p = put_varint(p, hb.len);
            memcpy(p, hb.buf, (size_t)hb.len), p += hb.len;
            PyBuffer_Release(&hb);
        }
    }
    self->len += size;
    if (self->count == 0) self->first_ts = self->max_ts = ts;
    if (ts > self->max_ts) self->max_ts = ts;
    self->count++;
    result = 1;
done:
    if (klen >= 0) PyBuffer_Release(&kv);
    if (vlen >= 0) PyBuffer_Release(&vv);
    Py_XDECREF(seq);
    Py_XDECREF(headers);
    Py_XDECREF(value);
    Py_XDECREF(key);
    return result;
}

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* fill(records, start, timestamp=-1) -> how many of records[start:] were appended (at
 * ``timestamp`` ms, or now); the batch is closed when one did not fit. */
static PyObject *Batch_fill(Batch *self, PyObject *args) {
    PyObject *records;
    Py_ssize_t start, done = 0;
    long long ts = -1;
    if (!PyArg_ParseTuple(args, "O!n|L", &PyList_Type, &records, &start, &ts)) return NULL;
    if (self->closed || self->built != NULL) return PyLong_FromLong(0);
    if (ts < 0) ts = now_ms();
    for (Py_ssize_t i = start < 0 ? 0 : start; i < PyList_GET_SIZE(records); i++, done++) {
        int put = Batch_put(self, PyList_GET_ITEM(records, i), ts);
        if (put < 0) return NULL;
        if (put == 0) {
            self->closed = 1;
            break;
        }
    }
    return PyLong_FromSsize_t(done);
}

static PyObject *Batch_build(Batch *self, PyObject *Py_UNUSED(ignored)) {
    if (self->built == NULL) {
        char *b = PyByteArray_AS_STRING(self->buf);
        put_be(b, 0, 8);                                      /* base offset: the broker's */
        put_be(b + 8, (uint64_t)(self->len - 12), 4);         /* length after this field */
        put_be(b + 12, (uint64_t)(int64_t)-1, 4);             /* partition leader epoch */
        b[16] = 2;                                            /* magic */
        put_be(b + 21, self->transactional ? 0x10 : 0, 2);    /* attributes */
        put_be(b + 23, (uint64_t)(self->count ? self->count - 1 : 0), 4); /* last offset delta */
        put_be(b + 27, (uint64_t)self->first_ts, 8);
        put_be(b + 35, (uint64_t)self->max_ts, 8);
        put_be(b + 43, (uint64_t)self->producer_id, 8);
        put_be(b + 51, (uint64_t)(int64_t)self->epoch, 2);
        put_be(b + 53, (uint64_t)(int64_t)self->base_sequence, 4);
        put_be(b + 57, (uint64_t)self->count, 4);
        put_be(b + 17, crc32c((const unsigned char *)b + 21, (size_t)(self->len - 21)), 4);
        /* The bytes themselves, not a copy: the request that sends them joins them once. */
        if (PyByteArray_Resize(self->buf, self->len) < 0) return NULL;
        self->built = Py_NewRef(self->buf);
        self->closed = 1;
    }
    return Py_NewRef(self->built);
}

static PyObject *Batch_set_producer_state(Batch *self, PyObject *args) {
    long long producer_id;
    int epoch, sequence;
    if (!PyArg_ParseTuple(args, "Lii", &producer_id, &epoch, &sequence)) return NULL;
    self->producer_id = producer_id;
    self->epoch = epoch;
    self->base_sequence = sequence;
    Py_RETURN_NONE;
}

/* The accumulator's per-message path (send()) finds this batch "full" and starts another:
 * records go in with fill() only. */
static PyObject *Batch_append(Batch *self, PyObject *args, PyObject *kwds) { Py_RETURN_NONE; }

static PyObject *Batch_close(Batch *self, PyObject *Py_UNUSED(ignored)) {
    self->closed = 1;
    Py_RETURN_NONE;
}

static PyObject *Batch_closed(Batch *self, PyObject *Py_UNUSED(ignored)) { return PyBool_FromLong(self->closed); }
static PyObject *Batch_count(Batch *self, PyObject *Py_UNUSED(ignored)) { return PyLong_FromLong(self->count); }
static PyObject *Batch_size(Batch *self, PyObject *Py_UNUSED(ignored)) { return PyLong_FromSsize_t(self->len); }

static PyMethodDef Batch_methods[] = {
    {"fill", (PyCFunction)Batch_fill, METH_VARARGS, "Append records[start:] (at a timestamp, or now) until one does not fit; how many."},
    {"append", (PyCFunction)(void (*)(void))Batch_append, METH_VARARGS | METH_KEYWORDS, "None: full (records go in with fill())."},
    {"close", (PyCFunction)Batch_close, METH_NOARGS, "No more records."},
    {"closed", (PyCFunction)Batch_closed, METH_NOARGS, "Whether it takes no more records."},
    {"record_count", (PyCFunction)Batch_count, METH_NOARGS, "How many records it holds."},
    {"size", (PyCFunction)Batch_size, METH_NOARGS, "Its size in bytes."},
    {"_set_producer_state", (PyCFunction)Batch_set_producer_state, METH_VARARGS, "Producer id, epoch, base sequence."},
    {"_build", (PyCFunction)Batch_build, METH_NOARGS, "The batch's bytes (header and CRC written; once)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject BatchType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "scorer.native._kafka.Batch",
    .tp_basicsize = sizeof(Batch),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A Kafka record batch (v2, uncompressed) for a producer's send_batch().",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Batch_init,
    .tp_dealloc = (destructor)Batch_dealloc,
    .tp_methods = Batch_methods,
};

static PyMethodDef methods[] = {
    {"inputs", inputs, METH_VARARGS, "The scoring loop's InputRecords of fetched records, one C pass."},
    {"place", place, METH_VARARGS, "The records grouped per (topic, partition) where send() puts them."},
    {"fill", fill, METH_VARARGS, "Append records to a record batch builder until it is full; how many."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kafka", NULL, -1, methods};

PyMODINIT_FUNC PyInit__kafka(void) {
    static const char *const out_names[MAX_ATTRS] = {"topic", "key", "value", "headers", "partition"};
    static const char *const in_names[MAX_ATTRS] = {"offset", "timestamp", "key", "value", "headers"};
    for (int a = 0; a < MAX_ATTRS; a++) {
        if ((outputs.names[a] = PyUnicode_InternFromString(out_names[a])) == NULL) return NULL;
        if ((fetched.names[a] = PyUnicode_InternFromString(in_names[a])) == NULL) return NULL;
    }
    if ((no_headers = PyList_New(0)) == NULL) return NULL;
    crc_init();
    if (PyType_Ready(&BatchType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Batch", (PyObject *)&BatchType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

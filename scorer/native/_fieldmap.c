/* scorer.native._fieldmap: FieldMap, a read-only str -> str mapping over the bytes of one JSON
 * object whose keys and values are all strings (an EDR event's ``fields``), and index_rows, which
 * puts one in place of the msgspec.Raw a row was decoded with.
 *
 * Why: msgspec decoding ``fields`` as dict[str, str] was ~65% of an EDR record's decode, and most
 * of its values are never read. A FieldMap validates and indexes the bytes once (one SIMD pass
 * per string), takes its keys from a process-wide cache of interned str, and makes a value a str
 * only when it is read.
 *
 * The contract (the consumers rely on it): a FieldMap is built only from what msgspec decodes as
 * dict[str, str] to the same items in the same order; anything else, and anything this module
 * chooses not to handle (duplicate keys, keys that are not plain printable ASCII, long keys, many
 * pairs), is refused with ValueError at construction, so that a later read cannot fail (but for
 * MemoryError) and the caller can fall back to msgspec. Values with non-ASCII bytes are decoded
 * (and so validated) at construction; ASCII values, escaped or not, when first read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "_compat.h"
#include "_fieldmap.h"

#define MAX_PAIRS 512
#define MAX_KEY 256
#define CACHED_KEY 64 /* longer keys are made each time (interned all the same) */
#define KEY_SLOTS 4096
#define ESCAPED 0x80000000u /* in FMEntry.len: the value holds escapes */

typedef struct {
    PyObject *key;   /* interned str */
    PyObject *value; /* the value's str once read (or decoded at construction); NULL before */
    uint32_t off;    /* the value's bytes, between its quotes, in the buffer */
    uint32_t len;    /* | ESCAPED */
} FMEntry;

typedef struct {
    PyObject_VAR_HEAD /* ob_size: the number of pairs */
    PyObject *owner;  /* the object whose buffer holds the bytes (see own_bytes) */
    const char *buf;
    Py_ssize_t len;
    int interned;     /* every key is interned: an interned query that is none of them is missing */
    FMEntry e[1];
} FieldMap;

static PyTypeObject FieldMapType;

/* ---- keys: a direct-mapped cache of interned str by their bytes ---------------------------- */

/* A key's bytes as two words: its first 8 and its last 8 (overlapping below 16 bytes; below 8
 * the bytes themselves). With the length, they are the whole key up to 16 bytes (most keys):
 * comparing a cached key is then three compares, no memcmp. */
typedef struct {
    uint64_t a, b;
    Py_ssize_t n;
    PyObject *key; /* NULL: a free slot */
} KeySlot;

static KeySlot key_cache[KEY_SLOTS];

static inline uint64_t load8(const char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t load4(const char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline void key_words(const char *p, Py_ssize_t n, uint64_t *a, uint64_t *b) {
    if (n >= 8) {
        *a = load8(p);
        *b = load8(p + n - 8);
    } else if (n >= 4) {
        *a = load4(p) | load4(p + n - 4) << 32;
        *b = 0;
    } else {
        uint64_t v = 0;
        for (Py_ssize_t i = 0; i < n; i++) v = v << 8 | (unsigned char)p[i];
        *a = v;
        *b = 0;
    }
}

/* The key str of n bytes at p (a new reference), NULL with *bad set when the bytes are not
 * printable ASCII, NULL with an error set on failure. */
static PyObject *key_of(const char *p, Py_ssize_t n, int *bad) {
    KeySlot *slot = NULL;
    uint64_t a = 0, b = 0;
    if (n <= CACHED_KEY) {
        key_words(p, n, &a, &b);
        uint64_t h = (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xC2B2AE3D27D4EB4FULL) ^ (uint64_t)n;
        slot = &key_cache[(h ^ h >> 31) * 0xBF58476D1CE4E5B9ULL >> 52 & (KEY_SLOTS - 1)];
        if (slot->key != NULL && slot->a == a && slot->b == b && slot->n == n &&
            (n <= 16 || memcmp((const char *)PyUnicode_DATA(slot->key) + 8, p + 8, (size_t)n - 16) == 0)) {
            Py_INCREF(slot->key);
            return slot->key;
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 || c > 0x7e) { /* quote and backslash never get here: the scan flagged them */
            *bad = 1;
            return NULL;
        }
    }
    PyObject *k = PyUnicode_New(n, 127);
    if (k == NULL) return NULL;
    memcpy(PyUnicode_DATA(k), p, (size_t)n);
    PyUnicode_InternInPlace(&k);
    if (PyObject_Hash(k) == -1) {
        Py_DECREF(k);
        return NULL;
    }
    if (slot != NULL) {
        Py_INCREF(k);
        Py_XSETREF(slot->key, k);
        slot->a = a;
        slot->b = b;
        slot->n = n;
    }
    return k;
}

/* ---- the scan --------------------------------------------------------------------------------- */

typedef struct {
    const char *why; /* the refusal, NULL when an exception is set instead */
    Py_ssize_t at;   /* its byte offset */
} Refusal;

#define S_ESC 1 /* the string holds escapes */
#define S_HI 2  /* the string holds bytes >= 0x80 */

static inline int is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static inline const char *skip_ws(const char *p, const char *e) {
    if (p < e && (unsigned char)*p > ' ') return p; /* no whitespace: what encoders write */
    while (p < e && is_ws((unsigned char)*p)) p++;
    return p;
}

static inline int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)p[i];
        int d;
        if (c >= '0' && c <= '9') d = c - '0';
        else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
        else return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The escape at p (a backslash): the byte after it, or NULL with why set. */
static const char *check_escape(const char *p, const char *e, const char **why) {
    if (e - p < 2) {
        *why = "truncated escape";
        return NULL;
    }
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        return p + 2;
    case 'u': {
        if (e - p < 6) break;
        int cp = hex4(p + 2);
        if (cp < 0) break;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            *why = "lone UTF-16 surrogate in a \\u escape";
            return NULL;
        }
        if (cp < 0xD800 || cp > 0xDBFF) return p + 6;
        int lo = e - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
        if (lo < 0xDC00 || lo > 0xDFFF) {
            *why = "lone UTF-16 surrogate in a \\u escape";
            return NULL;
        }
        return p + 12;
    }
    default:
        break;
    }
    *why = "invalid escape";
    return NULL;
}

/* The string whose bytes start at p (after its opening quote): its closing quote, its S_ flags
 * in *flags, or NULL with why set (unterminated, a raw control character, a bad escape). */
static inline __attribute__((always_inline)) const char *scan_string(const char *p, const char *e, unsigned *flags, const char **why) {
    unsigned f = 0;
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'), ctrl = _mm_set1_epi8(0x1f);
    while (e - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)p);
        __m128i sp = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                  _mm_cmpeq_epi8(_mm_min_epu8(x, ctrl), x)); /* x <= 0x1f unsigned */
        unsigned m = (unsigned)_mm_movemask_epi8(sp);
        if (!(f & S_HI)) m |= (unsigned)_mm_movemask_epi8(x); /* bytes >= 0x80, until the first */
        if (m == 0) {
            p += 16;
            continue;
        }
        p += __builtin_ctz(m);
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *flags = f;
            return p;
        }
        if (c == '\\') {
            f |= S_ESC;
            if ((p = check_escape(p, e, why)) == NULL) return NULL;
        } else if (c >= 0x80) {
            f |= S_HI;
            p++;
        } else {
            *why = "control character in a string";
            return NULL;
        }
    }
#endif
    while (p < e) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') {
            *flags = f;
            return p;
        }
        if (c == '\\') {
            f |= S_ESC;
            if ((p = check_escape(p, e, why)) == NULL) return NULL;
            continue;
        }
        if (c < 0x20) {
            *why = "control character in a string";
            return NULL;
        }
        if (c >= 0x80) f |= S_HI;
        p++;
    }
    *why = "unterminated string";
    return NULL;
}

static inline char *put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* The UTF-8 of the string bytes [p, e) (escapes checked by scan_string) with its escapes
 * replaced, written to out (never longer than the input); its length. */
static Py_ssize_t unescape(const char *p, const char *e, char *out) {
    char *o = out;
    while (p < e) {
        const char *b = memchr(p, '\\', (size_t)(e - p));
        if (b == NULL) b = e;
        memcpy(o, p, (size_t)(b - p));
        o += b - p;
        if (b == e) break;
        p = b + 2;
        switch (b[1]) {
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp = (unsigned)hex4(b + 2);
            p = b + 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + ((unsigned)hex4(b + 8) - 0xDC00);
                p = b + 12;
            }
            o = put_utf8(o, cp);
            break;
        }
        default: *o++ = b[1]; break; /* " \ / */
        }
    }
    return o - out;
}

/* The str of the string bytes [p, p + n) with escapes (or non-ASCII bytes): NULL with
 * UnicodeDecodeError set where they are not valid UTF-8. */
static PyObject *decode_escaped(const char *p, Py_ssize_t n, int esc) {
    if (!esc) return PyUnicode_DecodeUTF8(p, n, NULL);
    char stack[512], *buf = n <= (Py_ssize_t)sizeof stack ? stack : PyMem_Malloc((size_t)n);
    if (buf == NULL) return PyErr_NoMemory();
    stack[0] = 0; /* gcc's -Wmaybe-uninitialized cannot see that unescape writes what it returns */
    Py_ssize_t len = unescape(p, p + n, buf);
    PyObject *s = PyUnicode_DecodeUTF8(buf, len, NULL);
    if (buf != stack) PyMem_Free(buf);
    return s;
}

static void release_entries(FMEntry *e, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(e[i].key);
        Py_XDECREF(e[i].value);
    }
}

/* Whether key (the n-th, its hash set) is one of the n keys before it. A bit per hash of the keys
 * seen: most keys find theirs clear and are compared with none (keys are interned, but interning
 * may fail quietly: equal text is checked, not just the same object). */
static inline int seen_before(const FMEntry *e, Py_ssize_t n, PyObject *key, uint64_t seen[4]) {
    Py_hash_t h = ((PyASCIIObject *)key)->hash;
    unsigned bit = (unsigned)((uint64_t)h >> 7) & 255;
    uint64_t mask = (uint64_t)1 << (bit & 63);
    if (!(seen[bit >> 6] & mask)) {
        seen[bit >> 6] |= mask;
        return 0;
    }
    Py_ssize_t len = PyUnicode_GET_LENGTH(key);
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *o = e[j].key;
        if (o == key || (((PyASCIIObject *)o)->hash == h && PyUnicode_GET_LENGTH(o) == len &&
                         memcmp(PyUnicode_DATA(o), PyUnicode_DATA(key), (size_t)len) == 0))
            return 1;
    }
    return 0;
}

#define REFUSE(msg, where)        \
    do {                          \
        r->why = (msg);           \
        r->at = (where) - start;  \
        goto fail;                \
    } while (0)

/* The bytes of data's buffer, and the object (a new reference) that keeps them unchanged as long
 * as it lives: data where it is bytes, or its exporter where that is read-only and needs no release
 * (msgspec.Raw: then no Py_buffer need be kept, 80 bytes a map), else a copy (a bytearray could
 * change what was validated). NULL with an error set. */
static PyObject *own_bytes(PyObject *data, const char **buf, Py_ssize_t *len) {
    if (PyBytes_CheckExact(data)) {
        *buf = PyBytes_AS_STRING(data);
        *len = PyBytes_GET_SIZE(data);
        Py_INCREF(data);
        return data;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return NULL;
    PyBufferProcs *procs = view.obj == NULL ? NULL : Py_TYPE(view.obj)->tp_as_buffer;
    if (view.readonly && procs != NULL && procs->bf_releasebuffer == NULL) {
        *buf = view.buf;
        *len = view.len;
        return view.obj; /* the view's reference */
    }
    PyObject *copy = PyBytes_FromStringAndSize(view.buf, view.len);
    PyBuffer_Release(&view);
    if (copy != NULL) {
        *buf = PyBytes_AS_STRING(copy);
        *len = PyBytes_GET_SIZE(copy);
    }
    return copy;
}

/* A FieldMap over the buffer of data, or NULL: refused (r->why set, no exception) or failed (an
 * exception set, r->why NULL). */
static FieldMap *fm_build(PyObject *data, Refusal *r) {
    r->why = NULL;
    r->at = 0;
    const char *start;
    Py_ssize_t len;
    PyObject *owner = own_bytes(data, &start, &len);
    if (owner == NULL) return NULL;
    FMEntry tmp[MAX_PAIRS];
    Py_ssize_t n = 0;
    uint64_t seen[4] = {0, 0, 0, 0};
    const char *e = start + len, *p;
    if (len > 0x7fffffff) {
        p = start;
        REFUSE("buffer too large", p);
    }
    p = skip_ws(start, e);
    if (p == e || *p != '{') REFUSE("not a JSON object", p);
    p = skip_ws(p + 1, e);
    if (p < e && *p == '}') {
        p++;
    } else {
        for (;;) {
            if (p == e) REFUSE("truncated object", p);
            if (*p != '"') REFUSE("expected a string key", p);
            if (n == MAX_PAIRS) REFUSE("more than 512 pairs", p);
            unsigned flags;
            const char *ks = p + 1, *ke = scan_string(ks, e, &flags, &r->why);
            if (ke == NULL) REFUSE(r->why, ks);
            if (flags != 0) REFUSE("key is not printable ASCII without escapes", ks);
            if (ke - ks > MAX_KEY) REFUSE("key longer than 256 bytes", ks);
            p = skip_ws(ke + 1, e);
            if (p == e || *p != ':') REFUSE("expected ':'", p);
            p = skip_ws(p + 1, e);
            if (p == e || *p != '"') REFUSE("value is not a string", p);
            const char *vs = p + 1, *ve = scan_string(vs, e, &flags, &r->why);
            if (ve == NULL) REFUSE(r->why, vs);
            int bad = 0;
            FMEntry *t = &tmp[n];
            t->key = key_of(ks, ke - ks, &bad);
            if (t->key == NULL) {
                if (bad) REFUSE("key is not printable ASCII without escapes", ks);
                goto fail;
            }
            t->value = NULL;
            if (seen_before(tmp, n, t->key, seen)) {
                n++;
                REFUSE("duplicate key", ks);
            }
            n++;
            t->off = (uint32_t)(vs - start);
            t->len = (uint32_t)(ve - vs) | (flags & S_ESC ? ESCAPED : 0);
            if (flags & S_HI) {
                t->value = decode_escaped(vs, ve - vs, flags & S_ESC);
                if (t->value == NULL) {
                    if (!PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) goto fail;
                    PyErr_Clear();
                    REFUSE("invalid UTF-8", vs);
                }
            }
            p = skip_ws(ve + 1, e);
            if (p < e && *p == ',') {
                p = skip_ws(p + 1, e);
                continue;
            }
            if (p < e && *p == '}') {
                p++;
                break;
            }
            REFUSE(p == e ? "truncated object" : "expected ',' or '}'", p);
        }
    }
    p = skip_ws(p, e);
    if (p != e) REFUSE("trailing data after the object", p);
    FieldMap *m = PyObject_NewVar(FieldMap, &FieldMapType, n);
    if (m == NULL) goto fail;
    m->owner = owner;
    m->buf = start;
    m->len = len;
    m->interned = 1;
    for (Py_ssize_t i = 0; i < n; i++) m->interned &= PyUnicode_CHECK_INTERNED(tmp[i].key) != 0;
    memcpy(m->e, tmp, (size_t)n * sizeof(FMEntry));
    return m;
fail:
    release_entries(tmp, n);
    Py_DECREF(owner);
    return NULL;
}

/* ---- reads ------------------------------------------------------------------------------------ */

/* The value of entry i (borrowed: cached in the map), NULL with an error set (MemoryError). */
static PyObject *fm_value(FieldMap *m, Py_ssize_t i) {
    FMEntry *t = &m->e[i];
    if (t->value != NULL) return t->value;
    const char *p = m->buf + t->off;
    Py_ssize_t n = t->len & ~ESCAPED;
    PyObject *v;
    if (t->len & ESCAPED) {
        v = decode_escaped(p, n, 1);
    } else {
        v = PyUnicode_New(n, 127);
        if (v != NULL) memcpy(PyUnicode_DATA(v), p, (size_t)n);
    }
    t->value = v;
    return v;
}

/* The index of key, -1 when missing, -2 with an error set (an unhashable key, as dict says). */
static Py_ssize_t fm_find(FieldMap *m, PyObject *key) {
    Py_ssize_t n = Py_SIZE(m);
    if (!PyUnicode_Check(key)) return PyObject_Hash(key) == -1 ? -2 : -1;
    for (Py_ssize_t i = 0; i < n; i++) /* the key's own object: the common case (names in code are interned) */
        if (m->e[i].key == key) return i;
    if (PyUnicode_CheckExact(key)) {
        if (m->interned && PyUnicode_CHECK_INTERNED(key)) return -1;
        Py_hash_t h = ((PyASCIIObject *)key)->hash;
        if (h == -1 && (h = PyObject_Hash(key)) == -1) return -2;
        Py_ssize_t len = PyUnicode_GET_LENGTH(key);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *k = m->e[i].key;
            if (((PyASCIIObject *)k)->hash == h && PyUnicode_GET_LENGTH(k) == len && PyUnicode_IS_ASCII(key) &&
                memcmp(PyUnicode_DATA(k), PyUnicode_DATA(key), (size_t)len) == 0)
                return i;
        }
        return -1;
    }
    /* a str subclass: by its text (its own __hash__ or __eq__ are not asked, its value is) */
    if (PyUnicode_READY(key) < 0) return -2;
    if (!PyUnicode_IS_ASCII(key)) return -1; /* keys are ASCII */
    Py_ssize_t len = PyUnicode_GET_LENGTH(key);
    const void *data = PyUnicode_DATA(key);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *k = m->e[i].key;
        if (PyUnicode_GET_LENGTH(k) == len && memcmp(PyUnicode_DATA(k), data, (size_t)len) == 0) return i;
    }
    return -1;
}

/* ---- the type --------------------------------------------------------------------------------- */

/* FieldMap(data): fm_build's map, its refusal raised as ValueError. */
static PyObject *fm_make(PyObject *data) {
    Refusal r;
    FieldMap *m = fm_build(data, &r);
    if (m == NULL && r.why != NULL) PyErr_Format(PyExc_ValueError, "FieldMap: %s (at byte %zd)", r.why, r.at);
    return (PyObject *)m;
}

static PyObject *fm_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *data;
    if (kwds == NULL && PyTuple_GET_SIZE(args) == 1) {
        data = PyTuple_GET_ITEM(args, 0);
    } else if (!_PyArg_NoKeywords("FieldMap", kwds) || !PyArg_UnpackTuple(args, "FieldMap", 1, 1, &data)) {
        return NULL;
    }
    return fm_make(data);
}

/* FieldMap(data) without the argument tuple (a call per record). */
static PyObject *fm_vectorcall(PyObject *Py_UNUSED(type), PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if ((kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0) || nargs != 1) {
        if (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)
            return PyErr_Format(PyExc_TypeError, "FieldMap() takes no keyword arguments");
        return PyErr_Format(PyExc_TypeError, "FieldMap() takes exactly one argument (%zd given)", nargs);
    }
    return fm_make(args[0]);
}

static void fm_dealloc(FieldMap *m) {
    release_entries(m->e, Py_SIZE(m));
    Py_DECREF(m->owner);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static Py_ssize_t fm_length(FieldMap *m) { return Py_SIZE(m); }

static PyObject *fm_subscript(FieldMap *m, PyObject *key) {
    Py_ssize_t i = fm_find(m, key);
    if (i < 0) {
        if (i == -1) _PyErr_SetKeyError(key);
        return NULL;
    }
    PyObject *v = fm_value(m, i);
    Py_XINCREF(v);
    return v;
}

static int fm_contains(FieldMap *m, PyObject *key) {
    Py_ssize_t i = fm_find(m, key);
    return i == -2 ? -1 : i >= 0;
}

static PyObject *fm_get(FieldMap *m, PyObject *const *args, Py_ssize_t nargs) {
    if (!_PyArg_CheckPositional("get", nargs, 1, 2)) return NULL;
    Py_ssize_t i = fm_find(m, args[0]);
    if (i == -2) return NULL;
    PyObject *v = i >= 0 ? fm_value(m, i) : nargs == 2 ? args[1] : Py_None;
    Py_XINCREF(v);
    return v;
}

static PyObject *fm_keys(FieldMap *m, PyObject *Py_UNUSED(ignored)) {
    Py_ssize_t n = Py_SIZE(m);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(m->e[i].key);
        PyList_SET_ITEM(out, i, m->e[i].key);
    }
    return out;
}

static PyObject *fm_values(FieldMap *m, PyObject *Py_UNUSED(ignored)) {
    Py_ssize_t n = Py_SIZE(m);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = fm_value(m, i);
        if (v == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        Py_INCREF(v);
        PyList_SET_ITEM(out, i, v);
    }
    return out;
}

static PyObject *fm_items(FieldMap *m, PyObject *Py_UNUSED(ignored)) {
    Py_ssize_t n = Py_SIZE(m);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = fm_value(m, i), *item = v == NULL ? NULL : PyTuple_Pack(2, m->e[i].key, v);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

static PyObject *fm_to_dict(FieldMap *m, PyObject *Py_UNUSED(ignored)) {
    Py_ssize_t n = Py_SIZE(m);
    PyObject *out = _PyDict_NewPresized(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = fm_value(m, i);
        if (v == NULL || PyDict_SetItem(out, m->e[i].key, v) < 0) {
            Py_DECREF(out);
            return NULL;
        }
    }
    return out;
}

static PyObject *fm_iter(FieldMap *m) {
    PyObject *keys = fm_keys(m, NULL);
    if (keys == NULL) return NULL;
    PyObject *it = PyObject_GetIter(keys);
    Py_DECREF(keys);
    return it;
}

static PyObject *fm_repr(FieldMap *m) {
    PyObject *d = fm_to_dict(m, NULL);
    if (d == NULL) return NULL;
    PyObject *s = PyUnicode_FromFormat("FieldMap(%R)", d);
    Py_DECREF(d);
    return s;
}

static PyObject *fm_reduce(FieldMap *m, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("(O(y#))", (PyObject *)Py_TYPE(m), m->buf, m->len);
}

static PyObject *mapping_abc; /* collections.abc.Mapping, imported at module init */

/* 1 when m's items equal those of the dict d, 0 when not, -1 on error. */
static int fm_equals_dict(FieldMap *m, PyObject *d) {
    Py_ssize_t n = Py_SIZE(m);
    if (PyDict_GET_SIZE(d) != n) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *other = PyDict_GetItemWithError(d, m->e[i].key);
        if (other == NULL) return PyErr_Occurred() ? -1 : 0;
        PyObject *v = fm_value(m, i);
        if (v == NULL) return -1;
        Py_INCREF(other); /* the comparison may run code that changes the dict */
        int eq = PyObject_RichCompareBool(v, other, Py_EQ);
        Py_DECREF(other);
        if (eq <= 0) return eq;
    }
    return 1;
}

static int fm_equals_fm(FieldMap *a, FieldMap *b) {
    Py_ssize_t n = Py_SIZE(a);
    if (Py_SIZE(b) != n) return 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t j = fm_find(b, a->e[i].key);
        if (j < 0) return 0; /* str keys: fm_find cannot fail */
        PyObject *v = fm_value(a, i), *w = v == NULL ? NULL : fm_value(b, j);
        if (w == NULL) return -1;
        if (v != w && !compat_unicode_eq(v, w)) return 0;
    }
    return 1;
}

static PyObject *fm_richcompare(FieldMap *m, PyObject *other, int op) {
    if (op != Py_EQ && op != Py_NE) Py_RETURN_NOTIMPLEMENTED;
    int eq;
    if (Py_IS_TYPE(other, &FieldMapType)) {
        eq = fm_equals_fm(m, (FieldMap *)other);
    } else if (PyDict_Check(other)) {
        eq = fm_equals_dict(m, other);
    } else {
        int is = mapping_abc == NULL ? 0 : PyObject_IsInstance(other, mapping_abc);
        if (is < 0) return NULL;
        if (!is) Py_RETURN_NOTIMPLEMENTED;
        PyObject *d = PyDict_New();
        if (d == NULL) return NULL;
        eq = PyDict_Merge(d, other, 1) < 0 ? -1 : fm_equals_dict(m, d);
        Py_DECREF(d);
    }
    if (eq < 0) return NULL;
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static PyMappingMethods fm_as_mapping = {
    .mp_length = (lenfunc)fm_length,
    .mp_subscript = (binaryfunc)fm_subscript,
};

static PySequenceMethods fm_as_sequence = {
    .sq_contains = (objobjproc)fm_contains,
};

static PyMethodDef fm_methods[] = {
    {"get", (PyCFunction)(void (*)(void))fm_get, METH_FASTCALL, "get(key, default=None): the value of key, or default."},
    {"keys", (PyCFunction)fm_keys, METH_NOARGS, "The keys, in document order (a list)."},
    {"values", (PyCFunction)fm_values, METH_NOARGS, "The values, in document order (a list)."},
    {"items", (PyCFunction)fm_items, METH_NOARGS, "The (key, value) pairs, in document order (a list)."},
    {"to_dict", (PyCFunction)fm_to_dict, METH_NOARGS, "A new dict of the items."},
    {"__reduce__", (PyCFunction)fm_reduce, METH_NOARGS, "Rebuilt from the bytes."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject FieldMapType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "scorer.native._fieldmap.FieldMap",
    .tp_doc = "FieldMap(data): a read-only str -> str mapping over the bytes of a JSON object of strings.\n\n"
              "Raises ValueError for anything it does not accept (the caller decodes with msgspec then).",
    .tp_basicsize = offsetof(FieldMap, e),
    .tp_itemsize = sizeof(FMEntry),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_MAPPING,
    .tp_new = fm_new,
    .tp_vectorcall = fm_vectorcall,
    .tp_dealloc = (destructor)fm_dealloc,
    .tp_repr = (reprfunc)fm_repr,
    .tp_as_mapping = &fm_as_mapping,
    .tp_as_sequence = &fm_as_sequence,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_richcompare = (richcmpfunc)fm_richcompare,
    .tp_iter = (getiterfunc)fm_iter,
    .tp_methods = fm_methods,
};

/* ---- index_rows --------------------------------------------------------------------------------- */

/* The offset of the fields slot of type (a T_OBJECT_EX member descriptor of type or a base of
 * it), or -1 with TypeError set. */
static Py_ssize_t fields_offset(PyTypeObject *type, PyObject *name) {
    PyObject *descr = _PyType_Lookup(type, name); /* borrowed */
    if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDescrObject *md = (PyMemberDescrObject *)descr;
        /* the descriptor must describe this type's layout: a class attribute copied from another
         * type would point anywhere */
        if (md->d_member->type == T_OBJECT_EX && PyType_IsSubtype(type, PyDescr_TYPE(md))) return md->d_member->offset;
    }
    PyErr_Format(PyExc_TypeError, "index_rows: %.200s has no 'fields' slot", type->tp_name);
    return -1;
}

static PyObject *index_rows(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs) {
    if (!_PyArg_CheckPositional("index_rows", nargs, 2, 2)) return NULL;
    PyObject *rows = args[0], *raw_type = args[1];
    if (!PyList_Check(rows)) return PyErr_Format(PyExc_TypeError, "index_rows: rows must be a list");
    if (!PyType_Check(raw_type)) return PyErr_Format(PyExc_TypeError, "index_rows: raw_type must be a type");
    PyObject *name = PyUnicode_InternFromString("fields");
    if (name == NULL) return NULL;
    /* Every row checked first: a TypeError leaves every row as it was. */
    PyTypeObject *type = NULL;
    Py_ssize_t offset = -1, n = PyList_GET_SIZE(rows);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (row == Py_None) continue;
        if (Py_TYPE(row) != type) {
            type = Py_TYPE(row);
            if ((offset = fields_offset(type, name)) < 0) {
                Py_DECREF(name);
                return NULL;
            }
        }
        PyObject *raw = *(PyObject **)((char *)row + offset);
        if (raw == NULL || Py_TYPE(raw) != (PyTypeObject *)raw_type) {
            Py_DECREF(name);
            return PyErr_Format(PyExc_TypeError, "index_rows: row %zd's fields is %.200s, not %.200s", i,
                                raw == NULL ? "unset" : Py_TYPE(raw)->tp_name, ((PyTypeObject *)raw_type)->tp_name);
        }
    }
    PyObject *refused = PyList_New(0);
    if (refused == NULL) {
        Py_DECREF(name);
        return NULL;
    }
    type = NULL;
    for (Py_ssize_t i = 0; i < n; i++) { /* nothing here runs Python code: the list keeps its rows */
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (row == Py_None) continue;
        if (Py_TYPE(row) != type) {
            type = Py_TYPE(row);
            offset = fields_offset(type, name);
        }
        PyObject **slot = (PyObject **)((char *)row + offset);
        if (!Py_IS_TYPE(*slot, (PyTypeObject *)raw_type)) continue; /* a row listed twice: indexed above */
        Refusal r;
        FieldMap *m = fm_build(*slot, &r);
        if (m != NULL) {
            PyObject *raw = *slot; /* m holds its own reference to it */
            *slot = (PyObject *)m;
            Py_DECREF(raw);
            continue;
        }
        PyObject *at = r.why == NULL ? NULL : PyLong_FromSsize_t(i);
        if (at == NULL || PyList_Append(refused, at) < 0) {
            Py_XDECREF(at);
            Py_DECREF(refused);
            Py_DECREF(name);
            return NULL;
        }
        Py_DECREF(at);
    }
    Py_DECREF(name);
    return refused;
}

/* ---- the C API ---------------------------------------------------------------------------------- */

static PyObject *api_get(PyObject *map, PyObject *key) {
    Py_ssize_t i = fm_find((FieldMap *)map, key);
    if (i < 0) return NULL; /* -1: missing, no error; -2: the error set */
    PyObject *v = fm_value((FieldMap *)map, i);
    Py_XINCREF(v);
    return v;
}

static Py_ssize_t api_size(PyObject *map) { return Py_SIZE(map); }

static PyObject *api_key_at(PyObject *map, Py_ssize_t i) { return ((FieldMap *)map)->e[i].key; }

static FieldMapAPI api = {
    FIELDMAP_API_VERSION, &FieldMapType, api_get, api_size, api_key_at,
};

/* ---- the module --------------------------------------------------------------------------------- */

static PyMethodDef module_methods[] = {
    {"index_rows", (PyCFunction)(void (*)(void))index_rows, METH_FASTCALL,
     "index_rows(rows, raw_type, /): put a FieldMap over each row's fields (a raw_type) in its place; "
     "the indexes of the rows refused (left as they were)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_fieldmap", "FieldMap: a lazy str -> str mapping over a JSON object's bytes.", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__fieldmap(void) {
    (void)fieldmap_api; /* the consumers' half of _fieldmap.h */
    if (PyType_Ready(&FieldMapType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) return NULL;
    Py_INCREF(&FieldMapType);
    if (PyModule_AddObject(m, "FieldMap", (PyObject *)&FieldMapType) < 0) {
        Py_DECREF(&FieldMapType);
        goto fail;
    }
    PyObject *capsule = PyCapsule_New(&api, FIELDMAP_CAPSULE, NULL);
    if (capsule == NULL || PyModule_AddObject(m, "_C_API", capsule) < 0) {
        Py_XDECREF(capsule);
        goto fail;
    }
    /* isinstance(m, Mapping) for the consumers, and Mapping on the other side of ==. */
    if (mapping_abc == NULL) {
        PyObject *abc = PyImport_ImportModule("collections.abc");
        mapping_abc = abc == NULL ? NULL : PyObject_GetAttrString(abc, "Mapping");
        Py_XDECREF(abc);
        if (mapping_abc == NULL) goto fail;
    }
    PyObject *res = PyObject_CallMethod(mapping_abc, "register", "O", (PyObject *)&FieldMapType);
    if (res == NULL) goto fail;
    Py_DECREF(res);
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}

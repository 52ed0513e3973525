/* An alert's OCSF finding as JSON bytes, in C (scorer/alerts/findingjson.py, scorer/native/findings.py).
 *
 * join(parts, encode): the JSON of a list of pieces, each bytes (copied as they are: JSON the
 * caller encoded once), str (a JSON string), int, bool, None or float, exactly as msgspec writes
 * each: the Python reference is b"".join(msgspec.json.encode(p) ...). Strings are escaped here
 * as msgspec escapes them; floats are written by ``encode`` (msgspec's own shortest-digits
 * writer) in one call for all of a finding's floats, so their digits cannot differ.
 *
 * flow_extra(raw, names, decode_floats, encode): a flow's CICFlowMeter statistics, the JSON
 * object ``raw`` as the record carries it, written as msgspec writes the dict[str, float] that
 * decoding the record gives (canonical flows: the netflow finding carries the flow whole, and
 * decoding it whole again cost more than the rest of its finding). The numbers go through
 * msgspec (``decode_floats``, a list[float] decoder, then ``encode``) in one call each, so their
 * values and digits are msgspec's; this file only checks the object's shape. None when the
 * object is not the plain case (a key escaped, out of ``names``' order or repeated, a value
 * that is no number, a sum that is not finite): the caller then decodes the record whole.
 *
 * score_records(...): a batch's score records of one kind (scorer/pipeline/sink.py) written from
 * its columns, each as msgspec writes the row's ScoredEvent; the scores through ``encode``.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static inline int buf_grow(Buf *b, Py_ssize_t more) {
    if (b->len + more <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more) cap *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const char *src, Py_ssize_t n) {
    if (buf_grow(b, n) < 0) return -1;
    memcpy(b->data + b->len, src, (size_t)n);
    b->len += n;
    return 0;
}

static const char HEX[] = "0123456789abcdef";

#define TEXT_MAX 32 /* a number's text as msgspec writes it, at most (the digits' own path) */

/* UTF-8 text as msgspec writes a str: '"' and '\\' escaped, \b \t \n \f \r short, other bytes
 * below 0x20 as \u00xx, everything else (DEL and non-ASCII included) as it is; unquoted. */
static int put_utf8_body(Buf *b, const char *u, Py_ssize_t n) {
    if (buf_grow(b, 6 * n) < 0) return -1;
    char *out = b->data + b->len;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {  /* words with no byte to escape, copied whole (most text) */
        uint64_t w, q, s, c;
        memcpy(&w, u + i, 8);
        q = w ^ (0x0101010101010101ULL * '"');
        s = w ^ (0x0101010101010101ULL * '\\');
        c = w & (0x0101010101010101ULL * 0xe0);  /* zero where a byte is below 0x20 */
        if (((q - 0x0101010101010101ULL) & ~q & 0x8080808080808080ULL)
            | ((s - 0x0101010101010101ULL) & ~s & 0x8080808080808080ULL)
            | ((c - 0x0101010101010101ULL) & ~c & 0x8080808080808080ULL))
            break;
        memcpy(out, u + i, 8);
        out += 8;
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\t': *out++ = 't'; break;
        case '\n': *out++ = 'n'; break;
        case '\f': *out++ = 'f'; break;
        case '\r': *out++ = 'r'; break;
        default:
            *out++ = 'u'; *out++ = '0'; *out++ = '0';
            *out++ = HEX[c >> 4]; *out++ = HEX[c & 15];
        }
    }
    b->len = out - b->data;
    return 0;
}

static int put_utf8_str(Buf *b, const char *u, Py_ssize_t n) {
    return buf_put(b, "\"", 1) || put_utf8_body(b, u, n) || buf_put(b, "\"", 1) ? -1 : 0;
}

static int put_body(Buf *b, PyObject *s) {
    if (!PyUnicode_Check(s)) {
        PyErr_Format(PyExc_TypeError, "expected str, not %.100s", Py_TYPE(s)->tp_name);
        return -1;
    }
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    return u == NULL ? -1 : put_utf8_body(b, u, n);
}

/* A str as msgspec writes it (quoted). */
static int put_str(Buf *b, PyObject *s) {
    return buf_put(b, "\"", 1) || put_body(b, s) || buf_put(b, "\"", 1) ? -1 : 0;
}

/* Two strs as msgspec writes their concatenation. */
static int put_str2(Buf *b, PyObject *s, PyObject *t) {
    return buf_put(b, "\"", 1) || put_body(b, s) || put_body(b, t) || buf_put(b, "\"", 1) ? -1 : 0;
}

/* The UTF-8 of str(v), unquoted (a description's text). */
static int put_text(Buf *b, PyObject *v) {
    PyObject *text = PyUnicode_Check(v) ? Py_NewRef(v) : PyObject_Str(v);
    if (text == NULL) return -1;
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(text, &n);
    int rc = u == NULL ? -1 : buf_put(b, u, n);
    Py_DECREF(text);
    return rc;
}

static int put_ll(Buf *b, long long x) {
    char tmp[24], *end = tmp + sizeof tmp, *p = end;
    unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (x < 0) *--p = '-';
    return buf_put(b, p, end - p);
}

static int put_int(Buf *b, PyObject *v) {
    if (!PyLong_Check(v)) {
        PyErr_Format(PyExc_TypeError, "expected int, not %.100s", Py_TYPE(v)->tp_name);
        return -1;
    }
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (!overflow) return put_ll(b, x);
    return put_text(b, v);  /* beyond 64 bits: as Python writes it, as msgspec does */
}

static int put_bytes(Buf *b, PyObject *v) {
    if (!PyBytes_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "a finding's constant part must be bytes");
        return -1;
    }
    return buf_put(b, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v));
}

/* The pieces of msgspec's "[a,b,c]" for ``floats``: starts and lengths into its bytes. */
static PyObject *float_texts(PyObject *encode, PyObject *floats, Py_ssize_t *starts, Py_ssize_t *lens,
                             Py_ssize_t n) {
    PyObject *raw = PyObject_CallOneArg(encode, floats);
    if (raw == NULL) return NULL;
    if (!PyBytes_Check(raw)) {
        Py_DECREF(raw);
        PyErr_SetString(PyExc_TypeError, "encode must return bytes");
        return NULL;
    }
    const char *s = PyBytes_AS_STRING(raw);
    Py_ssize_t size = PyBytes_GET_SIZE(raw), at = 1, k = 0;
    for (Py_ssize_t i = 1; i < size && k < n; i++) {
        if (s[i] == ',' || s[i] == ']') {  /* a number's text holds neither */
            starts[k] = at;
            lens[k++] = i - at;
            at = i + 1;
        }
    }
    if (k != n) {
        Py_DECREF(raw);
        PyErr_SetString(PyExc_ValueError, "encode wrote another number of floats");
        return NULL;
    }
    return raw;
}

/* Interned attribute names, made once. */
static PyObject *S_round, *SIX, *ZERO, *S_uid, *S_ts, *S_topic, *S_partition, *S_offset, *S_score, *S_severity, *S_top_features,
    *S_by_model, *S_by_rule, *S_proto, *S_src_ip, *S_src_port, *S_dst_ip, *S_dst_port, *S_event_code, *S_host,
    *S_image, *S_source_system, *S_rule_name, *S_command_line, *S_process_id, *S_parent_image, *S_user;

static int put_attr_str(Buf *b, PyObject *obj, PyObject *name, int quoted) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) return -1;
    int rc = quoted ? put_str(b, v) : put_text(b, v);
    Py_DECREF(v);
    return rc;
}

static int put_attr_int(Buf *b, PyObject *obj, PyObject *name) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) return -1;
    int rc = PyLong_Check(v) && !PyBool_Check(v) ? put_int(b, v) : put_text(b, v);
    Py_DECREF(v);
    return rc;
}

/* A cached fragment: ``cache[key]``, or ``fill(key)`` stored there. New reference. */
static PyObject *fragment(PyObject *cache, PyObject *fill, PyObject *key) {
    PyObject *v = PyDict_GetItemWithError(cache, key);
    if (v != NULL) return Py_NewRef(v);
    if (PyErr_Occurred()) return NULL;
    v = PyObject_CallOneArg(fill, key);
    if (v != NULL && PyDict_SetItem(cache, key, v) < 0) Py_CLEAR(v);
    return v;
}

enum { WHAT_FLOW, WHAT_ENDPOINT, WHAT_SIEM };

/* What the finding's description says of the event (scorer.alerts.ocsf._what), as UTF-8. */
static int put_what(Buf *b, PyObject *event, long what) {
    if (what == WHAT_FLOW) {
        return put_attr_str(b, event, S_proto, 0) || buf_put(b, " ", 1) || put_attr_str(b, event, S_src_ip, 0)
            || buf_put(b, ":", 1) || put_attr_int(b, event, S_src_port) || buf_put(b, " -> ", 4)
            || put_attr_str(b, event, S_dst_ip, 0) || buf_put(b, ":", 1) || put_attr_int(b, event, S_dst_port) ? -1 : 0;
    }
    if (what == WHAT_ENDPOINT) {
        if (buf_put(b, "event ", 6) || put_attr_int(b, event, S_event_code) || buf_put(b, " on ", 4)
            || put_attr_str(b, event, S_host, 0))
            return -1;
        PyObject *image = PyObject_GetAttr(event, S_image);
        if (image == NULL) return -1;
        int truthy = PyObject_IsTrue(image), rc = truthy;
        if (truthy > 0) rc = buf_put(b, " by ", 4) || put_text(b, image) ? -1 : 0;
        Py_DECREF(image);
        return rc < 0 ? -1 : 0;
    }
    PyObject *name = PyObject_GetAttr(event, S_rule_name);
    if (name == NULL) return -1;
    PyObject *shown = PyObject_Repr(name);
    Py_DECREF(name);
    if (shown == NULL) return -1;
    int rc = put_attr_str(b, event, S_source_system, 0) || buf_put(b, " alert ", 7) || put_text(b, shown) ? -1 : 0;
    Py_DECREF(shown);
    if (rc < 0) return -1;
    PyObject *host = PyObject_GetAttr(event, S_host);
    if (host == NULL) return -1;
    int truthy = PyObject_IsTrue(host);
    rc = truthy;
    if (truthy > 0) rc = buf_put(b, " on ", 4) || put_text(b, host) ? -1 : 0;
    Py_DECREF(host);
    return rc < 0 ? -1 : 0;
}

/* |x| * scale rounded to an integer, half to even on x's exact value (as Python rounds and
 * formats a float to that many decimals), exactly, for |x| < 1e9 and a power of ten
 * scale <= 1e6: from the product's rounded value and its exact error (fma). -1 otherwise. */
static double scaled(double x, double scale) {
    double a = fabs(x);
    if (!(a < 1e9)) return -1;
    double p = a * scale, err = fma(a, scale, -p);  /* a * scale == p + err exactly */
    double f = floor(p), t = p - f, n = f;           /* p < 2^53: f and t exact; |err| < 0.07 */
    if (t > 0.75) n = f + 1;
    else if (t >= 0.25) {
        double d = t - 0.5;  /* exact (Sterbenz): the sign of d + err decides */
        if (d > -err) n = f + 1;
        else if (d == -err) n = fmod(f, 2.0) == 0.0 ? f : f + 1;
    }
    return n;
}

/* Python's round(x, 6): the decimal with 6 places nearest x read back as the nearest double,
 * N / 10^6 (a correctly rounded division of two exact doubles). 0 where scaled() is not sure. */
static int round6(double x, double *out) {
    double n = scaled(x, 1e6);
    if (n < 0) return 0;
    *out = copysign(n / 1e6, x);
    return 1;
}

/* format(x, ".3f") into out (32 bytes, not NUL-terminated): its length, or 0 where scaled()
 * is not sure. */
static int fixed3(double x, char *out) {
    double n = scaled(x, 1e3);
    if (n < 0) return 0;
    long long v = (long long)n;
    char tmp[24], *end = tmp + sizeof tmp, *p = end;
    for (int i = 0; i < 3; i++, v /= 10) *--p = (char)('0' + v % 10);
    *--p = '.';
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (signbit(x)) *--p = '-';
    memcpy(out, p, (size_t)(end - p));
    return (int)(end - p);
}

/* repr(x) from msgspec's text of x (the same shortest digits, another layout: an exponent
 * with a sign and at least two digits, and from 1e-4 down rather than 1e-5). Its length into
 * out (40 bytes), or 0 for msgspec's "null" (NaN, infinities). */
static int repr_of(const char *t, Py_ssize_t n, char *out) {
    if (n == 4 && memcmp(t, "null", 4) == 0) return 0;
    const char *e = memchr(t, 'e', (size_t)n);
    int neg = t[0] == '-', len = 0;
    if (n > 32) return 0;
    if (e != NULL) {
        Py_ssize_t m = e - t, xd = n - m - 1;
        const char *x = e + 1;
        int xneg = *x == '-';
        if (xneg) {
            x++;
            xd--;
        }
        memcpy(out, t, (size_t)m);
        len = (int)m;
        out[len++] = 'e';
        out[len++] = xneg ? '-' : '+';
        if (xd < 2) out[len++] = '0';
        memcpy(out + len, x, (size_t)xd);
        return len + (int)xd;
    }
    const char *a = t + neg;
    if (n - neg > 6 && memcmp(a, "0.0000", 6) == 0) {  /* 1e-5 <= |x| < 1e-4 */
        const char *d = a + 6, *stop = t + n;
        while (d < stop && *d == '0') d++;
        if (d == stop) return 0;
        if (neg) out[len++] = '-';
        out[len++] = *d++;
        if (d < stop) {
            out[len++] = '.';
            memcpy(out + len, d, (size_t)(stop - d));
            len += (int)(stop - d);
        }
        memcpy(out + len, "e-05", 4);
        return len + 4;
    }
    memcpy(out, t, (size_t)n);
    return (int)n;
}

/* Whether UTF-8 text holds a character scorer.alerts.textsafe.visible replaces (C0, DEL, C1,
 * U+2028, U+2029). */
static int has_control(const char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return 1;
        if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f) return 1;
        if (c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80
            && ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9))
            return 1;
    }
    return 0;
}

/* The description (ocsf.detection_finding's), a JSON string: what, the score, the reasons. */
static int put_desc(Buf *b, PyObject *event, long what, double score, PyObject *rule_reasons, PyObject *top,
                    PyObject *visible) {
    Buf t = {NULL, 0, 0};
    int rc = -1;
    char fixed[32];
    int flen = fixed3(score, fixed);
    char *shown = flen ? fixed : PyOS_double_to_string(score, 'f', 3, 0, NULL);  /* {score:.3f} */
    if (shown == NULL) goto done;
    Py_ssize_t shown_len = flen ? flen : (Py_ssize_t)strlen(shown);
    int bad = put_what(&t, event, what) || buf_put(&t, "; score ", 8) || buf_put(&t, shown, shown_len)
              || buf_put(&t, "; driven by ", 12) || (rule_reasons != Py_None && put_text(&t, rule_reasons));
    if (!flen) PyMem_Free(shown);
    if (bad) goto done;
    Py_ssize_t n = PyList_GET_SIZE(top), before = t.len;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(top, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3) {
            PyErr_SetString(PyExc_TypeError, "top features must be (name, value, contribution) tuples");
            goto done;
        }
        if ((i && buf_put(&t, ", ", 2)) || put_text(&t, PyTuple_GET_ITEM(item, 0))) goto done;
    }
    if (t.len == before && buf_put(&t, "model score", 11)) goto done;  /* ", ".join(names) or "model score" */
    if (!has_control(t.data, t.len)) {  /* the common case: nothing for visible() to replace */
        rc = put_utf8_str(b, t.data, t.len);
        goto done;
    }
    PyObject *text = PyUnicode_DecodeUTF8(t.data, t.len, "strict");
    PyObject *safe = text == NULL ? NULL : PyObject_CallOneArg(visible, text);
    Py_XDECREF(text);
    if (safe != NULL) rc = put_str(b, safe);
    Py_XDECREF(safe);
done:
    PyMem_Free(t.data);
    return rc;
}

#define TS_LIMIT_S ((double)((1ULL << 63) / 1000) / 1000) /* ocsf._TS_LIMIT_S */

/* The escapes scorer.alerts.textsafe.escape_json writes for DEL, C1 controls and U+2028/U+2029
 * (as msgspec leaves them: raw, inside strings), into a new bytes. */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

#define HAS_ZERO(v) (((v) - ONES) & ~(v) & HIGHS) /* never misses a zero byte (may flag one after it) */

/* Whether none of the 8 bytes at s starts what escaped() replaces: DEL, or the lead byte C2 or
 * E2 (word at a time: most of a finding, non-ASCII text such as "®" included). */
static inline int plain_word(const char *s) {
    uint64_t w;
    memcpy(&w, s, 8);
    uint64_t del = w ^ (ONES * 0x7f), c2 = w ^ (ONES * 0xc2), e2 = w ^ (ONES * 0xe2);
    return (HAS_ZERO(del) | HAS_ZERO(c2) | HAS_ZERO(e2)) == 0;
}

/* Whether s holds a byte of 0x80 or above (a reduction the compiler vectorises). */
static int any_high(const char *s, Py_ssize_t n) {
    uint64_t acc = 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        acc |= w;
    }
    for (; i < n; i++) acc |= (unsigned char)s[i];
    return (acc & HIGHS) != 0;
}

static PyObject *escaped(const char *s, Py_ssize_t n) {
    /* The common case, ASCII with no DEL: two fast passes (a word reduction, memchr). */
    if (!any_high(s, n) && memchr(s, 0x7f, (size_t)n) == NULL) return PyBytes_FromStringAndSize(s, n);
    Py_ssize_t extra = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + 8 <= n && plain_word(s + i)) {
            i += 7;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        if (c == 0x7f) extra += 5;
        else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f) extra += 4;
        else if (c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80
                 && ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9))
            extra += 3;
    }
    PyObject *out = PyBytes_FromStringAndSize(extra ? NULL : s, n + extra);
    if (out == NULL || !extra) return out;
    char *o = PyBytes_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        unsigned code = 0;
        if (c == 0x7f) code = 0x7f;
        else if (c == 0xc2 && i + 1 < n && (unsigned char)s[i + 1] >= 0x80 && (unsigned char)s[i + 1] <= 0x9f) {
            code = (unsigned char)s[i + 1];
            i += 1;
        }
        else if (c == 0xe2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80
                 && ((unsigned char)s[i + 2] == 0xa8 || (unsigned char)s[i + 2] == 0xa9)) {
            code = (unsigned char)s[i + 2] == 0xa8 ? 0x2028 : 0x2029;
            i += 2;
        }
        if (!code) {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        *o++ = 'u';
        *o++ = HEX[(code >> 12) & 15];
        *o++ = HEX[(code >> 8) & 15];
        *o++ = HEX[(code >> 4) & 15];
        *o++ = HEX[code & 15];
    }
    return out;
}

/* finding()'s buffer, kept between calls (its callbacks into Python never call it again; if
 * one did, that call takes a buffer of its own). */
static Buf kept = {NULL, 0, 0};
static int kept_in_use = 0;

/* consts: the writer's (scorer.alerts.findingjson.FindingWriter); see there for each. */
enum { C_UID_PREFIX, C_TITLE, C_TYPES, C_ANALYTIC, C_RELATED_TAIL, C_SCORER, C_KIND, C_SEVERITIES, C_SEVERITY_FILL,
       C_FEATURES, C_FEATURE_FILL, C_VISIBLE, C_ENCODE, C_METADATA, C_PRODUCT_TIME, C_PROFILES, C_PROFILES_HOST,
       C_IP, C_UNSET, C_SIZE };

#define PUT(b, lit) buf_put(b, lit, (Py_ssize_t)sizeof(lit) - 1) /* a literal */

/* An address as an OCSF endpoint's ip (scorer.alerts.evidence._ip: the text, or UNSET when it
 * is no address): 1 and *ip (a new reference) when it is one, 0 when not, -1 on error. */
static int address(PyObject *consts, PyObject *text, PyObject **ip) {
    PyObject *v = PyObject_CallOneArg(PyTuple_GET_ITEM(consts, C_IP), text);
    if (v == NULL) return -1;
    if (v == PyTuple_GET_ITEM(consts, C_UNSET)) {
        Py_DECREF(v);
        return 0;
    }
    *ip = v;
    return 1;
}

/* {"ip":..,"port":..} of a flow's side (scorer.alerts.evidence.flow_evidence), either left out
 * where it does not fit OCSF (no address, a port outside 0-65535). */
static int put_flow_endpoint(Buf *b, PyObject *consts, PyObject *event, PyObject *ip_name, PyObject *port_name) {
    PyObject *text = PyObject_GetAttr(event, ip_name), *ip = NULL, *port = NULL;
    if (text == NULL) return -1;
    int rc = -1, has_ip = address(consts, text, &ip);
    Py_DECREF(text);
    if (has_ip < 0 || (port = PyObject_GetAttr(event, port_name)) == NULL) goto done;
    int overflow = 0;
    long long p = PyLong_Check(port) ? PyLong_AsLongLongAndOverflow(port, &overflow) : -1;
    if (p == -1 && PyErr_Occurred()) goto done;
    int has_port = PyLong_Check(port) && !overflow && p >= 0 && p <= 65535;
    rc = PUT(b, "{") || (has_ip && (PUT(b, "\"ip\":") || put_str(b, ip)))
         || (has_port && ((has_ip && PUT(b, ",")) || PUT(b, "\"port\":") || put_ll(b, p)))
         || PUT(b, "}") ? -1 : 0;
done:
    Py_XDECREF(ip);
    Py_XDECREF(port);
    return rc;
}

/* ,"<side>_endpoint":{"ip":..} of a SIEM alert's address, when it has one that is one. */
static int put_siem_endpoint(Buf *b, PyObject *consts, PyObject *event, PyObject *ip_name, const char *member) {
    PyObject *text = PyObject_GetAttr(event, ip_name), *ip = NULL;
    if (text == NULL) return -1;
    int truthy = PyObject_IsTrue(text), has_ip = truthy > 0 ? address(consts, text, &ip) : truthy;
    Py_DECREF(text);
    if (has_ip <= 0) return has_ip;
    int rc = buf_put(b, member, (Py_ssize_t)strlen(member)) || put_str(b, ip) || PUT(b, "}") ? -1 : 0;
    Py_DECREF(ip);
    return rc;
}

/* An endpoint event's attribute that the evidence names when it is truthy: 1 and *v (a new
 * reference to a str) when it is a non-empty str, 0 when it is None or empty (*v NULL), 2 when it is
 * another type (not what decoding makes: the reference path writes that finding), -1 on error. */
static int text_attr(PyObject *event, PyObject *name, PyObject **v) {
    *v = PyObject_GetAttr(event, name);
    if (*v == NULL) return -1;
    if (PyUnicode_CheckExact(*v) || *v == Py_None) {
        if (*v != Py_None && PyUnicode_GET_LENGTH(*v) > 0) return 1;
        return *v == Py_None ? 0 : 3;  /* 3: an empty str (cmd_line keeps it) */
    }
    Py_CLEAR(*v);
    return 2;
}

/* {"name":..,"path":..,"type_id":8,"type":"Executable File"} of an image (evidence._file: the
 * name is what follows the last slash or backslash; both are ASCII, so the UTF-8 split is the same). */
static int put_file(Buf *b, PyObject *path) {
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(path, &n);
    if (u == NULL) return -1;
    Py_ssize_t at = n;
    while (at > 0 && u[at - 1] != '/' && u[at - 1] != '\\') at--;
    return PUT(b, "{\"name\":") || put_utf8_str(b, u + at, n - at) || PUT(b, ",\"path\":") || put_utf8_str(b, u, n)
           || PUT(b, ",\"type_id\":8,\"type\":\"Executable File\"}") ? -1 : 0;
}

/* ,"process":{..} of an endpoint event (scorer.alerts.evidence._process) when its image or
 * command line is set: 0, 1 where a value is not of its decoded type (the reference writes
 * the finding), -1 on error. */
static int put_process(Buf *b, PyObject *event) {
    PyObject *image = NULL, *cmd = NULL, *pid = NULL, *parent = NULL, *user = NULL;
    int rc = -1, has_image = text_attr(event, S_image, &image), has_cmd = -1, has_parent = -1, has_user = -1;
    if (has_image < 0 || (has_cmd = text_attr(event, S_command_line, &cmd)) < 0
        || (has_parent = text_attr(event, S_parent_image, &parent)) < 0 || (has_user = text_attr(event, S_user, &user)) < 0
        || (pid = PyObject_GetAttr(event, S_process_id)) == NULL)
        goto done;
    if (has_image == 2 || has_cmd == 2 || has_parent == 2 || has_user == 2 || (pid != Py_None && !PyLong_CheckExact(pid))) {
        rc = 1;
        goto done;
    }
    if (has_image != 1 && has_cmd != 1) {  /* neither set: no process */
        rc = 0;
        goto done;
    }
    int overflow = 0;
    long long p = pid == Py_None ? -1 : PyLong_AsLongLongAndOverflow(pid, &overflow);
    if (p == -1 && PyErr_Occurred()) goto done;
    int has_pid = pid != Py_None && !overflow && p >= 0 && p < (1LL << 31), first = 1;
    if (PUT(b, ",\"process\":{")) goto done;
    if (has_image == 1) {  /* the file's name first, as the process's name */
        Py_ssize_t n;
        const char *u = PyUnicode_AsUTF8AndSize(image, &n);
        if (u == NULL) goto done;
        Py_ssize_t at = n;
        while (at > 0 && u[at - 1] != '/' && u[at - 1] != '\\') at--;
        if (PUT(b, "\"name\":") || put_utf8_str(b, u + at, n - at)) goto done;
        first = 0;
    }
    if (has_pid && ((!first && PUT(b, ",")) || PUT(b, "\"pid\":") || put_ll(b, p))) goto done;
    first &= !has_pid;
    if (has_cmd != 0 && ((!first && PUT(b, ",")) || PUT(b, "\"cmd_line\":") || put_str(b, cmd))) goto done;
    first &= has_cmd == 0;
    if (has_image == 1 && ((!first && PUT(b, ",")) || PUT(b, "\"file\":") || put_file(b, image))) goto done;
    first &= has_image != 1;
    if (has_parent == 1) {
        Py_ssize_t n;
        const char *u = PyUnicode_AsUTF8AndSize(parent, &n);
        if (u == NULL) goto done;
        Py_ssize_t at = n;
        while (at > 0 && u[at - 1] != '/' && u[at - 1] != '\\') at--;
        if ((!first && PUT(b, ",")) || PUT(b, "\"parent_process\":{\"name\":") || put_utf8_str(b, u + at, n - at)
            || PUT(b, ",\"file\":") || put_file(b, parent) || PUT(b, "}"))
            goto done;
        first = 0;
    }
    if (has_user == 1 && ((!first && PUT(b, ",")) || PUT(b, "\"user\":{\"name\":") || put_str(b, user) || PUT(b, "}")))
        goto done;
    rc = PUT(b, "}");
done:
    Py_XDECREF(image);
    Py_XDECREF(cmd);
    Py_XDECREF(pid);
    Py_XDECREF(parent);
    Py_XDECREF(user);
    return rc;
}

/* The evidence of an event (scorer.alerts.evidence), around ``data``: the event as the finding
 * carries it, JSON msgspec wrote. 0, 1 where the reference path writes the finding, -1 on error. */
static int put_evidence(Buf *b, PyObject *consts, PyObject *event, long what, PyObject *data) {
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "an evidence's data must be bytes");
        return -1;
    }
    if (PUT(b, "{\"data\":") || put_bytes(b, data)) return -1;
    if (what == WHAT_FLOW) {
        if (PUT(b, ",\"src_endpoint\":") || put_flow_endpoint(b, consts, event, S_src_ip, S_src_port)
            || PUT(b, ",\"dst_endpoint\":") || put_flow_endpoint(b, consts, event, S_dst_ip, S_dst_port))
            return -1;
        PyObject *proto = PyObject_GetAttr(event, S_proto);
        if (proto == NULL) return -1;
        int truthy = PyObject_IsTrue(proto), rc = truthy;
        if (truthy > 0) {
            rc = PUT(b, ",\"connection_info\":{\"protocol_name\":") || put_str(b, proto)
                 || PUT(b, ",\"direction_id\":0,\"direction\":\"Unknown\"}") ? -1 : 0;
        }
        Py_DECREF(proto);
        if (rc < 0) return -1;
    }
    else if (what == WHAT_ENDPOINT) {
        int rc = put_process(b, event);
        if (rc != 0) return rc;
    }
    else if (put_siem_endpoint(b, consts, event, S_src_ip, ",\"src_endpoint\":{\"ip\":") < 0
             || put_siem_endpoint(b, consts, event, S_dst_ip, ",\"dst_endpoint\":{\"ip\":") < 0)
        return -1;
    return PUT(b, "}");
}

static PyObject *finding(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 8 || !PyTuple_Check(args[0]) || PyTuple_GET_SIZE(args[0]) != C_SIZE) {
        PyErr_SetString(PyExc_TypeError, "finding(consts, event, what, ref, decision, now_ms, evidence, rules)");
        return NULL;
    }
    PyObject *consts = args[0], *event = args[1], *ref = args[3], *d = args[4], *now = args[5], *proof = args[6],
             *rules = args[7];
#define K(i) PyTuple_GET_ITEM(consts, i)
    long what = PyLong_AsLong(args[2]);
    if (what == -1 && PyErr_Occurred()) return NULL;
    /* evidence: its JSON, or (data,): the event's JSON, around which its evidence is written here */
    int own_evidence = PyTuple_Check(proof) && PyTuple_GET_SIZE(proof) == 1;
    if ((!PyBytes_Check(proof) && !own_evidence)
        || (rules != Py_None && (!PyTuple_Check(rules) || PyTuple_GET_SIZE(rules) != 4))) {
        PyErr_SetString(PyExc_TypeError, "evidence must be bytes or (data,), rules None or (title, reasons, related, hits)");
        return NULL;
    }
    PyObject *result = NULL, *uid = NULL, *ts = NULL, *sev = NULL, *sev_json = NULL, *top = NULL, *host = NULL,
             *floats = NULL, *texts = NULL, *original = NULL, *topic = NULL, *score_obj = NULL, *by_rule_obj = NULL,
             *by_model_obj = NULL;
    Buf b = {NULL, 0, 0};
    int own = !kept_in_use;
    if (own) {
        b = kept;
        b.len = 0;
        kept_in_use = 1;
    }
    if ((uid = PyObject_GetAttr(event, S_uid)) == NULL || (ts = PyObject_GetAttr(event, S_ts)) == NULL
        || (sev = PyObject_GetAttr(d, S_severity)) == NULL || (top = PyObject_GetAttr(d, S_top_features)) == NULL
        || (score_obj = PyObject_GetAttr(d, S_score)) == NULL || (by_rule_obj = PyObject_GetAttr(d, S_by_rule)) == NULL
        || (by_model_obj = PyObject_GetAttr(d, S_by_model)) == NULL || (topic = PyObject_GetAttr(ref, S_topic)) == NULL)
        goto done;
    if (!PyFloat_CheckExact(score_obj) || !PyFloat_CheckExact(ts) || !PyList_Check(top)) {
        result = Py_NewRef(Py_None);  /* not what decoding and scoring make: the reference path decides */
        goto done;
    }
    if (what != WHAT_FLOW) {
        if ((host = PyObject_GetAttr(event, S_host)) == NULL) goto done;
    }
    int has_host = host != NULL && PyObject_IsTrue(host) > 0;
    if (PyErr_Occurred()) goto done;
    int by_rule = PyObject_IsTrue(by_rule_obj), by_model = PyObject_IsTrue(by_model_obj);
    if (by_rule < 0 || by_model < 0) goto done;
    double score = PyFloat_AS_DOUBLE(score_obj), t = PyFloat_AS_DOUBLE(ts);
    /* Python's round(score * 100): half to even, and a ValueError for NaN or infinity */
    double x = score * 100, conf = round(x);
    if (fabs(x - conf) == 0.5) conf = 2.0 * round(x / 2.0);
    if (!isfinite(conf)) {
        PyErr_SetString(PyExc_ValueError, "cannot convert float NaN or infinity to integer");
        goto done;
    }
    /* The floats, in the order written: round(score, 6), then each feature's value, contribution. */
    Py_ssize_t nf = 2 + 2 * PyList_GET_SIZE(top);  /* and the event's ts last, for its repr */
    if ((floats = PyList_New(nf)) == NULL) goto done;
    double r6;
    PyObject *rounded = round6(score, &r6) ? PyFloat_FromDouble(r6) : PyObject_CallMethodOneArg(score_obj, S_round, SIX);
    if (rounded == NULL) goto done;
    PyList_SET_ITEM(floats, 0, rounded);
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(top); i++) {
        PyObject *item = PyList_GET_ITEM(top, i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 3) {
            PyErr_SetString(PyExc_TypeError, "top features must be (name, value, contribution) tuples");
            goto done;
        }
        PyList_SET_ITEM(floats, 1 + 2 * i, Py_NewRef(PyTuple_GET_ITEM(item, 1)));
        PyList_SET_ITEM(floats, 2 + 2 * i, Py_NewRef(PyTuple_GET_ITEM(item, 2)));
    }
    PyList_SET_ITEM(floats, nf - 1, Py_NewRef(ts));
    Py_ssize_t starts[2 + 2 * 64], lens[2 + 2 * 64];
    if (nf > 2 + 2 * 64) {
        PyErr_SetString(PyExc_ValueError, "more than 64 top features");
        goto done;
    }
    if ((texts = float_texts(K(C_ENCODE), floats, starts, lens, nf)) == NULL) goto done;
    const char *ft = PyBytes_AS_STRING(texts);
    if ((sev_json = fragment(K(C_SEVERITIES), K(C_SEVERITY_FILL), sev)) == NULL || !PyBytes_Check(sev_json)) goto fail;
    char shown_ts[40];  /* str(ts), from msgspec's digits (Python's own repr for NaN, infinities) */
    int ts_len = repr_of(ft + starts[nf - 1], lens[nf - 1], shown_ts);
    if (!ts_len && (original = PyObject_Str(ts)) == NULL) goto done;
    int bad = buf_grow(&b, 4096) || put_bytes(&b, sev_json) || put_int(&b, now)
              || buf_put(&b, ",\"confidence_score\":", 20) || put_ll(&b, (long long)conf)
              || put_bytes(&b, K(C_METADATA)) || put_str2(&b, K(C_UID_PREFIX), uid) || put_bytes(&b, K(C_PRODUCT_TIME))
              || (ts_len ? put_utf8_str(&b, shown_ts, ts_len) : put_str(&b, original))
              || buf_put(&b, ",\"log_name\":", 12) || put_str(&b, topic)
              || buf_put(&b, ",\"processed_time\":", 18) || put_int(&b, now)
              || put_bytes(&b, K(has_host ? C_PROFILES_HOST : C_PROFILES)) || put_str2(&b, K(C_UID_PREFIX), uid)
              || buf_put(&b, ",\"title\":", 9)
              || put_str(&b, rules != Py_None && by_rule ? PyTuple_GET_ITEM(rules, 0) : K(C_TITLE))
              || buf_put(&b, ",\"desc\":", 8)
              || put_desc(&b, event, what, score, rules != Py_None ? PyTuple_GET_ITEM(rules, 1) : Py_None, top,
                          K(C_VISIBLE))
              || put_bytes(&b, K(C_TYPES));
    if (bad) goto done;
    if (fabs(t) < TS_LIMIT_S) {
        long long ms = (long long)(t * 1000);
        if (buf_put(&b, ",\"first_seen_time\":", 19) || put_ll(&b, ms) || buf_put(&b, ",\"last_seen_time\":", 18)
            || put_ll(&b, ms))
            goto done;
    }
    int ev_rc = 0;
    bad = put_bytes(&b, K(C_ANALYTIC)) || put_str(&b, uid) || put_bytes(&b, K(C_RELATED_TAIL))
          || (rules != Py_None && put_bytes(&b, PyTuple_GET_ITEM(rules, 2))) || buf_put(&b, "},\"evidences\":[", 15)
          || (own_evidence ? (ev_rc = put_evidence(&b, consts, event, what, PyTuple_GET_ITEM(proof, 0))) < 0
                           : put_bytes(&b, proof));
    if (bad) goto done;
    if (ev_rc > 0) {  /* a value not of its decoded type: the reference path writes this finding */
        result = Py_NewRef(Py_None);
        goto done;
    }
    bad = buf_put(&b, "],\"unmapped\":{\"scorer\":{\"score\":", 32)
          || buf_put(&b, ft + starts[0], lens[0]) || put_bytes(&b, K(C_SCORER));
    if (bad) goto done;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(top); i++) {
        PyObject *pair = fragment(K(C_FEATURES), K(C_FEATURE_FILL), PyTuple_GET_ITEM(PyList_GET_ITEM(top, i), 0));
        if (pair == NULL) goto done;
        bad = !PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(pair, i > 0))
              || put_bytes(&b, PyTuple_GET_ITEM(pair, i > 0)) || buf_put(&b, ft + starts[1 + 2 * i], lens[1 + 2 * i])
              || buf_put(&b, ",\"contribution\":", 16) || buf_put(&b, ft + starts[2 + 2 * i], lens[2 + 2 * i])
              || buf_put(&b, "}", 1);
        Py_DECREF(pair);
        if (bad) goto fail;
    }
    const char *raised = by_rule ? (by_model ? "\"model+rules\"" : "\"rules\"") : "\"model\"";
    bad = buf_put(&b, "],\"source\":{\"topic\":", 20) || put_str(&b, topic) || buf_put(&b, ",\"partition\":", 13)
          || put_attr_int(&b, ref, S_partition) || buf_put(&b, ",\"offset\":", 10) || put_attr_int(&b, ref, S_offset)
          || buf_put(&b, "},\"event_uid\":", 14) || put_str(&b, uid) || put_bytes(&b, K(C_KIND))
          || buf_put(&b, raised, (Py_ssize_t)strlen(raised))
          || (rules != Py_None && put_bytes(&b, PyTuple_GET_ITEM(rules, 3)));
    if (bad) goto done;
    if (has_host) {
        bad = buf_put(&b, "}},\"device\":{\"hostname\":", 24) || put_str(&b, host)
              || buf_put(&b, ",\"type_id\":0,\"type\":\"Unknown\"}}", 31);
    }
    else bad = buf_put(&b, "}}}", 3);
    if (bad) goto done;
    result = escaped(b.data, b.len);
    goto done;
fail:
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "a cached fragment is not bytes");
done:
#undef K
    if (own) {
        kept = b;
        kept_in_use = 0;
    }
    else PyMem_Free(b.data);
    Py_XDECREF(uid); Py_XDECREF(ts); Py_XDECREF(sev); Py_XDECREF(sev_json); Py_XDECREF(top); Py_XDECREF(host);
    Py_XDECREF(floats); Py_XDECREF(texts); Py_XDECREF(original); Py_XDECREF(topic); Py_XDECREF(score_obj);
    Py_XDECREF(by_rule_obj); Py_XDECREF(by_model_obj);
    return result;
}

static const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

#define MAX_STATS 128 /* the decoding path's own limit on a flow's statistics */

/* The length of the JSON number at p when it is already what msgspec writes for the float it
 * decodes to, from its digits alone (read_number's case: at most 15 significant digits, fixed
 * layout), else 0. Such a token is laid out as layout() lays out its digits: an integer part
 * with no leading zero (or "0"), a '.', a fraction that is "0" or ends in a non-zero digit, at
 * most 4 zeros after "0." and at most 16 integer digits; no exponent. Most of a flow's numbers
 * are ("0.0", "83.0", "0.25"): they are copied as they are rather than rebuilt digit by digit. */
static Py_ssize_t canonical_len(const char *p, const char *end) {
    const char *s = p;
    if (p < end && *p == '-') p++;
    if (p >= end || *p < '0' || *p > '9') return 0;
    const char *int_start = p;
    if (*p == '0') p++;
    else
        while (p < end && *p >= '0' && *p <= '9') p++;
    Py_ssize_t int_len = p - int_start;
    if (p >= end || *p != '.') return 0;  /* an integer token: msgspec adds ".0" */
    const char *frac = ++p;
    while (p < end && *p >= '0' && *p <= '9') p++;
    Py_ssize_t frac_len = p - frac;
    if (frac_len == 0 || (p < end && (*p == 'e' || *p == 'E'))) return 0;
    if (*int_start == '0') {
        Py_ssize_t z = 0;
        while (z < frac_len && frac[z] == '0') z++;
        if (z == frac_len) return frac_len == 1 ? p - s : 0;         /* zero: "0.0" (and "-0.0") only */
        if (z > 4 || frac[frac_len - 1] == '0' || frac_len - z > 15) return 0;
        return p - s;
    }
    if (int_len > 16) return 0;
    if (frac_len == 1 && frac[0] == '0') {  /* an integer value: its digits but trailing zeros count */
        Py_ssize_t nd = int_len;
        while (nd > 0 && int_start[nd - 1] == '0') nd--;
        return nd <= 15 ? p - s : 0;
    }
    return frac[frac_len - 1] != '0' && int_len + frac_len <= 15 ? p - s : 0;
}

/* Keys (in order, each one of ``names`` after the previous one's) and number tokens of the
 * object at p (ending before end; *after: just past it): their count, or -1 when the object
 * is not the plain case. */
static const char *read_number(const char *p, const char *end, char *out, int *len);

static Py_ssize_t scan_stats(const char *p, const char *end, PyObject *names, Py_ssize_t *key_of,
                             const char **tok, Py_ssize_t *tok_len, char (*text)[TEXT_MAX], int *text_len,
                             const char **member, char *verbatim, const char **after) {
    Py_ssize_t n_names = PyTuple_GET_SIZE(names), next = 0, count = 0;
    p = skip_ws(p, end);
    if (p >= end || *p++ != '{') return -1;
    p = skip_ws(p, end);
    if (p < end && *p == '}') {
        *after = p + 1;
        return 0;
    }
    for (;;) {
        if (count == MAX_STATS || p >= end || *p != '"') return -1;
        member[count] = p++;
        verbatim[count] = 0;
        const char *key = p;
        if (next < n_names) {  /* the common case: the next name, as it is (one memcmp) */
            PyObject *name = PyTuple_GET_ITEM(names, next);
            Py_ssize_t len = PyBytes_GET_SIZE(name);
            if (end - p > len + 1 && p[len] == '"' && memcmp(p, PyBytes_AS_STRING(name), (size_t)len) == 0) {
                key_of[count] = next++;
                p += len + 1;
                Py_ssize_t c = *p == ':' ? canonical_len(p + 1, end) : 0;
                if (c) {  /* "name":number, both as msgspec writes them: copied as they are */
                    verbatim[count] = 1;
                    tok[count] = p + 1;
                    tok_len[count] = c;
                    text_len[count] = 0;
                    p = skip_ws(p + 1 + c, end);
                    count++;
                    goto member_end;
                }
                goto value;
            }
        }
        while (p < end && *p != '"') {
            if (*p == '\\' || (unsigned char)*p < 0x20) return -1;
            p++;
        }
        if (p >= end) return -1;
        Py_ssize_t klen = p++ - key;
        Py_ssize_t found = -1;
        while (found < 0 && next < n_names) {
            PyObject *name = PyTuple_GET_ITEM(names, next++);
            if (PyBytes_GET_SIZE(name) == klen && memcmp(PyBytes_AS_STRING(name), key, (size_t)klen) == 0)
                found = next - 1;
        }
        if (found < 0) return -1;  /* not a name, or not after the previous key's (a repeat too) */
        key_of[count] = found;
    value:
        p = skip_ws(p, end);
        if (p >= end || *p++ != ':') return -1;
        p = skip_ws(p, end);
        const char *stop = read_number(p, end, text[count], &text_len[count]);
        if (stop == NULL) return -1;
        tok[count] = p;
        tok_len[count++] = stop - p;
        p = skip_ws(stop, end);
    member_end:
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') {
            *after = p + 1;
            return count;
        }
        return -1;
    }
}


/* msgspec's layout of a double from its shortest digits d[0..nd) and its decimal point kk
 * (the value is 0.d * 10^kk): fixed for -5 < kk <= 16, else d.ddde<kk-1>. Its length. */
static int layout(int neg, const char *d, int nd, int kk, char *out) {
    char *o = out;
    if (neg) *o++ = '-';
    if (kk >= nd && kk <= 16) {  /* an integer: its digits, zeros, ".0" */
        memcpy(o, d, (size_t)nd);
        o += nd;
        for (int i = nd; i < kk; i++) *o++ = '0';
        *o++ = '.';
        *o++ = '0';
    }
    else if (kk > 0 && kk <= 16) {
        memcpy(o, d, (size_t)kk);
        o += kk;
        *o++ = '.';
        memcpy(o, d + kk, (size_t)(nd - kk));
        o += nd - kk;
    }
    else if (kk > -5 && kk <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = kk; i < 0; i++) *o++ = '0';
        memcpy(o, d, (size_t)nd);
        o += nd;
    }
    else {
        *o++ = d[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, d + 1, (size_t)(nd - 1));
            o += nd - 1;
        }
        *o++ = 'e';
        int x = kk - 1;
        if (x < 0) {
            *o++ = '-';
            x = -x;
        }
        char tmp[8];
        int k = 0;
        do {
            tmp[k++] = (char)('0' + x % 10);
            x /= 10;
        } while (x);
        while (k) *o++ = tmp[--k];
    }
    return (int)(o - out);
}

/* The end of the JSON number at p (RFC 8259's grammar, as msgspec reads it), or NULL; and,
 * into out (TEXT_MAX bytes), what msgspec writes for the float it decodes to, when that is sure
 * from its digits alone: at most 15 significant digits and a magnitude in [1e-307, 1e300)
 * (DBL_DIG: such a decimal is the shortest, and only, one of at most 15 digits that reads back
 * as its double, so its digits are the ones msgspec writes). *len: that text's length, or 0:
 * msgspec reads and writes this one. One pass: most of a flow's bytes are its numbers. */
static const char *read_number(const char *p, const char *end, char *out, int *len) {
    int neg = 0, nd = 0, dp = 0, syntax_float = 0, leading = 1, sure = 1;
    char d[TEXT_MAX];
    *len = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') return NULL;
    if (*p == '0') p++;  /* a lone zero: a digit after it ends the number there (and the record fails) */
    else {
        for (; p < end && *p >= '0' && *p <= '9'; p++) {  /* the integer part */
            leading = 0;
            if (nd < (int)sizeof d) d[nd++] = *p;
            else sure = 0;
            dp++;
        }
    }
    if (p < end && *p == '.') {
        syntax_float = 1;
        const char *first = ++p;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (leading && *p == '0') {
                dp--;
                continue;
            }
            leading = 0;
            if (nd < (int)sizeof d) d[nd++] = *p;
            else sure = 0;
        }
        if (p == first) return NULL;
    }
    long x = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {  /* the exponent */
        syntax_float = 1;
        int xneg = 0, xd = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) xneg = *p++ == '-';
        const char *first = p;
        for (; p < end && *p >= '0' && *p <= '9'; p++, xd++) {
            if (xd < 6) x = 10 * x + (*p - '0');
            else sure = 0;
        }
        if (p == first) return NULL;
        if (xneg) x = -x;
    }
    if (!sure) return p;
    while (nd > 0 && d[nd - 1] == '0') nd--;
    if (nd == 0) {  /* zero: an integer token ("-0") reads as the int 0, so its float is +0.0 */
        char *o = out;
        if (neg && syntax_float) *o++ = '-';
        *o++ = '0';
        *o++ = '.';
        *o++ = '0';
        *len = (int)(o - out);
        return p;
    }
    long kk = dp + x;
    if (nd <= 15 && kk - 1 >= -307 && kk - 1 < 300) *len = layout(neg, d, nd, (int)kk, out);
    return p;
}

/* The statistics object at raw (before end; *stop: just past it) as msgspec writes its
 * dict[str, float] (flow_extra). */
static PyObject *stats_json(const char *raw, const char *end, PyObject *names, PyObject *decode, PyObject *encode,
                            const char **stop) {
    Py_ssize_t raw_len = end - raw;
    Py_ssize_t key_of[MAX_STATS], tok_len[MAX_STATS], slow[MAX_STATS], starts[MAX_STATS], lens[MAX_STATS];
    const char *tok[MAX_STATS];
    char text[MAX_STATS][TEXT_MAX];
    int text_len[MAX_STATS];
    const char *member[MAX_STATS];
    char verbatim[MAX_STATS];
    PyObject *result = NULL, *array = NULL, *values = NULL, *texts = NULL;
    Buf b = {NULL, 0, 0};
    Py_ssize_t n = scan_stats(raw, end, names, key_of, tok, tok_len, text, text_len, member, verbatim, stop),
               n_slow = 0;
    if (n <= 0) {
        result = n == 0 ? PyBytes_FromStringAndSize("{}", 2) : Py_NewRef(Py_None);
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (text_len[i] == 0 && !verbatim[i]) slow[n_slow++] = i;
    }
    if (n_slow) {
        /* The other numbers as one JSON array, read as list[float] by msgspec and written by
         * it: their values and digits are msgspec's own, integers' conversion included. */
        if (buf_put(&b, "[", 1) < 0) goto done;
        for (Py_ssize_t k = 0; k < n_slow; k++) {
            if (buf_put(&b, tok[slow[k]], tok_len[slow[k]]) < 0 || buf_put(&b, k + 1 < n_slow ? "," : "]", 1) < 0)
                goto done;
        }
        array = PyBytes_FromStringAndSize(b.data, b.len);
        if (array == NULL) goto done;
        values = PyObject_CallOneArg(decode, array);
        if (values == NULL) {  /* a number out of range: the decoding path says what it is */
            if (!PyErr_ExceptionMatches(PyExc_ValueError)) goto done;
            PyErr_Clear();
            result = Py_NewRef(Py_None);
            goto done;
        }
        if (!PyList_CheckExact(values) || PyList_GET_SIZE(values) != n_slow) {
            PyErr_SetString(PyExc_TypeError, "decode_floats must return a list of the numbers");
            goto done;
        }
        for (Py_ssize_t k = 0; k < n_slow; k++) {
            PyObject *v = PyList_GET_ITEM(values, k);
            if (!PyFloat_CheckExact(v)) {
                PyErr_SetString(PyExc_TypeError, "decode_floats must return floats");
                goto done;
            }
            /* Every value under 1e300 (the plain ones are): the decoding path's finite sum holds
             * for up to MAX_STATS of them. A larger one: that path decides. */
            if (!(fabs(PyFloat_AS_DOUBLE(v)) < 1e300)) {
                result = Py_NewRef(Py_None);
                goto done;
            }
        }
        texts = float_texts(encode, values, starts, lens, n_slow);
        if (texts == NULL) goto done;
    }
    /* Each key as in the record, its number at most TEXT_MAX (or msgspec's, no longer than a
     * float's 24): within the record's length and TEXT_MAX + 8 a key. */
    result = PyBytes_FromStringAndSize(NULL, raw_len + (TEXT_MAX + 8) * n + (texts ? PyBytes_GET_SIZE(texts) : 0));
    if (result == NULL) goto done;
    char *o = PyBytes_AS_STRING(result);
    *o++ = '{';
    for (Py_ssize_t i = 0, k = 0; i < n; i++) {
        if (verbatim[i]) {  /* this member and the next ones as they are, while one ',' parts them */
            Py_ssize_t j = i;
            while (j + 1 < n && verbatim[j + 1] && tok[j] + tok_len[j] + 1 == member[j + 1]) j++;
            const char *stop_at = tok[j] + tok_len[j];
            memcpy(o, member[i], (size_t)(stop_at - member[i]));
            o += stop_at - member[i];
            i = j;
            *o++ = i + 1 < n ? ',' : '}';
            continue;
        }
        PyObject *name = PyTuple_GET_ITEM(names, key_of[i]);
        Py_ssize_t len = PyBytes_GET_SIZE(name);
        *o++ = '"';
        memcpy(o, PyBytes_AS_STRING(name), (size_t)len);
        o += len;
        *o++ = '"';
        *o++ = ':';
        if (text_len[i]) {
            memcpy(o, text[i], (size_t)text_len[i]);
            o += text_len[i];
        }
        else {
            memcpy(o, PyBytes_AS_STRING(texts) + starts[k], (size_t)lens[k]);
            o += lens[k++];
        }
        *o++ = i + 1 < n ? ',' : '}';
    }
    if (_PyBytes_Resize(&result, o - PyBytes_AS_STRING(result)) < 0) goto done;
done:
    PyMem_Free(b.data);
    Py_XDECREF(array);
    Py_XDECREF(values);
    Py_XDECREF(texts);
    return result;
}

static int names_ok(PyObject *names) {
    if (!PyTuple_Check(names)) return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++) {
        if (!PyBytes_CheckExact(PyTuple_GET_ITEM(names, i))) return 0;
    }
    return 1;
}

static PyObject *flow_extra(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !names_ok(args[1])) {
        PyErr_SetString(PyExc_TypeError, "flow_extra(raw, names: tuple[bytes, ...], decode_floats, encode)");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) return NULL;
    const char *end = (const char *)view.buf + view.len, *stop = NULL;
    PyObject *out = stats_json(view.buf, end, args[1], args[2], args[3], &stop);
    if (out != NULL && out != Py_None && skip_ws(stop, end) != end) Py_SETREF(out, Py_NewRef(Py_None));
    PyBuffer_Release(&view);
    return out;
}

/* The end of the JSON string whose opening quote is at p - 1, past its closing quote. */
static const char *string_end(const char *p, const char *end) {
    while (p < end) {
        if (*p == '\\') p += 2;
        else if (*p++ == '"') return p;
    }
    return NULL;
}

/* The end of the JSON value at p (not checked: msgspec reads the record), or NULL. */
static const char *value_end(const char *p, const char *end) {
    if (p >= end) return NULL;
    if (*p == '"') return string_end(p + 1, end);
    if (*p == '{' || *p == '[') {
        int depth = 0;
        while (p < end) {
            char c = *p++;
            if (c == '"') {
                if ((p = string_end(p, end)) == NULL) return NULL;
            }
            else if (c == '{' || c == '[') depth++;
            else if ((c == '}' || c == ']') && --depth == 0) return p;
        }
        return NULL;
    }
    while (p < end && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') p++;
    return p;
}

/* flow_split(record, names, decode_floats, encode) -> (head, stats) | None: a flow record with
 * its "extra" member's value replaced by {} (what msgspec decodes quickly: the statistics are
 * most of a flow's bytes), and those statistics as flow_extra writes them. None where the
 * record is not that plain case: a key escaped (it might read as "extra"), "extra" twice, or
 * statistics flow_extra does not write. */
static PyObject *flow_split(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyBytes_Check(args[0]) || !names_ok(args[1])) {
        PyErr_SetString(PyExc_TypeError, "flow_split(record: bytes, names: tuple[bytes, ...], decode_floats, encode)");
        return NULL;
    }
    const char *raw = PyBytes_AS_STRING(args[0]), *end = raw + PyBytes_GET_SIZE(args[0]), *p = skip_ws(raw, end);
    const char *vs = NULL, *ve = NULL;
    PyObject *stats = NULL;
    if (p >= end || *p++ != '{') Py_RETURN_NONE;
    p = skip_ws(p, end);
    if (p < end && *p == '}') p = end;  /* no member */
    while (p < end) {
        if (*p++ != '"') goto none;
        const char *key = p;
        while (p < end && *p != '"' && *p != '\\') p++;
        if (p >= end || *p == '\\') goto none;
        int is_extra = p - key == 5 && memcmp(key, "extra", 5) == 0;
        p = skip_ws(p + 1, end);
        if (p >= end || *p++ != ':') goto none;
        p = skip_ws(p, end);
        const char *stop = NULL;
        if (is_extra) {  /* read once: its end is where the statistics end */
            if (vs != NULL) goto none;
            stats = stats_json(p, end, args[1], args[2], args[3], &stop);
            if (stats == NULL || stats == Py_None) return stats;
            vs = p;
            ve = stop;
        }
        else if ((stop = value_end(p, end)) == NULL) goto none;
        p = skip_ws(stop, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}' && skip_ws(p + 1, end) == end) break;
        goto none;
    }
    if (vs == NULL) return Py_BuildValue("(OO)", args[0], Py_None);
    Py_ssize_t before = vs - raw, after = end - ve;
    PyObject *head = PyBytes_FromStringAndSize(NULL, before + 2 + after);
    if (head == NULL) {
        Py_DECREF(stats);
        return NULL;
    }
    char *h = PyBytes_AS_STRING(head);
    memcpy(h, raw, (size_t)before);
    memcpy(h + before, "{}", 2);
    memcpy(h + before + 2, ve, (size_t)after);
    PyObject *out = PyTuple_Pack(2, head, stats);
    Py_DECREF(head);
    Py_DECREF(stats);
    return out;
none:
    Py_XDECREF(stats);
    Py_RETURN_NONE;
}

/* A float32 matrix [rows, cols], C-contiguous, through the buffer protocol (no NumPy headers). */
static int matrix(PyObject *obj, Py_buffer *view, Py_ssize_t *rows, Py_ssize_t *cols) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->ndim != 2 || view->itemsize != 4 || view->format == NULL || strcmp(view->format, "f") != 0) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_TypeError, "expected a C-contiguous float32 matrix");
        return -1;
    }
    *rows = view->shape[0];
    *cols = view->shape[1];
    return 0;
}

/* A float32 vector of n values. */
static int vector(PyObject *obj, Py_buffer *view, Py_ssize_t n) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return -1;
    if (view->ndim != 1 || view->itemsize != 4 || view->format == NULL || strcmp(view->format, "f") != 0
        || view->shape[0] != n) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_TypeError, "expected a float32 vector of one value per column");
        return -1;
    }
    return 0;
}

/* top_features(x, weights, center, scale, k, names, rows): per row of x listed, the k largest positive
 * contributions weights * (x - center) / scale (float32, in NumPy's order of operations), most
 * first and the lower column first among equal ones, as (name, round(x, 6), round(contribution,
 * 6)) with NumPy's rounding of each dtype (float32: times 1e6, rint, over 1e6, in float32), and
 * none that rounds to 0: what scorer.alerts.decide.Decider._top_all gets from a stable argsort. */
static PyObject *top_features(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7 || !PyList_Check(args[5]) || !PyList_Check(args[6])) {
        PyErr_SetString(PyExc_TypeError, "top_features(x, weights, center, scale, k, names: list[str], rows: list[int])");
        return NULL;
    }
    Py_ssize_t k = PyLong_AsSsize_t(args[4]);
    if (k == -1 && PyErr_Occurred()) return NULL;
    if (k < 0 || k > 64) {
        PyErr_SetString(PyExc_ValueError, "k must be in 0..64");
        return NULL;
    }
    Py_buffer xv, wv, cv, sv;
    Py_ssize_t rows, cols;
    if (matrix(args[0], &xv, &rows, &cols) < 0) return NULL;
    if (vector(args[1], &wv, cols) < 0) {
        PyBuffer_Release(&xv);
        return NULL;
    }
    if (vector(args[2], &cv, cols) < 0) {
        PyBuffer_Release(&xv);
        PyBuffer_Release(&wv);
        return NULL;
    }
    if (vector(args[3], &sv, cols) < 0) {
        PyBuffer_Release(&xv);
        PyBuffer_Release(&wv);
        PyBuffer_Release(&cv);
        return NULL;
    }
    PyObject *names = args[5], *out = NULL;
    float *cr = PyMem_Malloc(sizeof(float) * (size_t)(cols ? cols : 1));
    if (cr == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (PyList_GET_SIZE(names) < cols) {
        PyErr_SetString(PyExc_ValueError, "fewer names than columns");
        goto done;
    }
    PyObject *which = args[6];  /* the rows of x to explain, in this order */
    Py_ssize_t n_rows = PyList_GET_SIZE(which);
    if ((out = PyList_New(n_rows)) == NULL) goto done;
    const float *x = xv.buf, *w = wv.buf, *center = cv.buf, *scale = sv.buf;
    for (Py_ssize_t r = 0; r < n_rows; r++) {
        Py_ssize_t at_row = PyLong_AsSsize_t(PyList_GET_ITEM(which, r));
        if (at_row == -1 && PyErr_Occurred()) goto fail;
        if (at_row < 0 || at_row >= rows) {
            PyErr_SetString(PyExc_IndexError, "a row out of the matrix");
            goto fail;
        }
        const float *xr = x + at_row * cols;
        for (Py_ssize_t j = 0; j < cols; j++) {  /* as NumPy: (x - center), times weights, over scale */
            float t = xr[j] - center[j];
            t = w[j] * t;
            cr[j] = t / scale[j];
        }
        Py_ssize_t at[64], n = 0;
        for (Py_ssize_t j = 0; j < cols && k > 0; j++) {
            float v = cr[j];
            if (!(v > 0)) continue;  /* NaN, zero, negative: never shown */
            if (n == k && !(v > cr[at[n - 1]])) continue;
            Py_ssize_t p = n < k ? n++ : n - 1;
            while (p > 0 && v > cr[at[p - 1]]) {  /* after equal ones: they come from lower columns */
                at[p] = at[p - 1];
                p--;
            }
            at[p] = j;
        }
        float rounded[64];
        Py_ssize_t shown = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            rounded[i] = rintf(cr[at[i]] * 1e6f) / 1e6f;
            shown += rounded[i] > 0;  /* one that rounds to 0 is not shown (and not replaced) */
        }
        PyObject *row = PyList_New(shown);
        if (row == NULL) goto fail;
        PyList_SET_ITEM(out, r, row);
        for (Py_ssize_t i = 0, s = 0; i < n; i++) {
            if (!(rounded[i] > 0)) continue;
            double xd = rint((double)xr[at[i]] * 1e6) / 1e6;
            PyObject *item = Py_BuildValue("(Odd)", PyList_GET_ITEM(names, at[i]), xd, (double)rounded[i]);
            if (item == NULL) goto fail;
            PyList_SET_ITEM(row, s++, item);
        }
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    PyMem_Free(cr);
    PyBuffer_Release(&xv);
    PyBuffer_Release(&wv);
    PyBuffer_Release(&cv);
    PyBuffer_Release(&sv);
    return out;
}

/* alerted(scores, threshold, cutoffs): the rows whose float32 score reaches the threshold
 * (compared in float32, as NumPy compares a float32 array with a Python float), their scores
 * as floats, and each one's level: how many of the ascending float64 cutoffs it reaches
 * (np.searchsorted(..., side="right")). What scorer.alerts.decide.Decider.decide computes
 * with NumPy, in one call: at 50-record batches its calls cost more than the rows. */
static PyObject *alerted(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyFloat_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "alerted(scores, threshold: float, cutoffs)");
        return NULL;
    }
    Py_buffer sv, cv;
    if (PyObject_GetBuffer(args[0], &sv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) return NULL;
    if (sv.ndim != 1 || sv.itemsize != 4 || sv.format == NULL || strcmp(sv.format, "f") != 0) {
        PyBuffer_Release(&sv);
        PyErr_SetString(PyExc_TypeError, "expected a float32 vector of scores");
        return NULL;
    }
    if (PyObject_GetBuffer(args[2], &cv, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        PyBuffer_Release(&sv);
        return NULL;
    }
    PyObject *rows = NULL, *scores = NULL, *levels = NULL, *out = NULL;
    if (cv.ndim != 1 || cv.itemsize != 8 || cv.format == NULL || strcmp(cv.format, "d") != 0) {
        PyErr_SetString(PyExc_TypeError, "expected a float64 vector of cut-offs");
        goto done;
    }
    float threshold = (float)PyFloat_AS_DOUBLE(args[1]);
    const float *s = sv.buf;
    const double *cut = cv.buf;
    Py_ssize_t n = sv.shape[0], nc = cv.shape[0];
    if ((rows = PyList_New(0)) == NULL || (scores = PyList_New(0)) == NULL || (levels = PyList_New(0)) == NULL)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!(s[i] >= threshold)) continue;
        double v = (double)s[i];
        Py_ssize_t level = 0;
        while (level < nc && cut[level] <= v) level++;
        PyObject *row = PyLong_FromSsize_t(i), *score = PyFloat_FromDouble(v), *lv = PyLong_FromSsize_t(level);
        int bad = row == NULL || score == NULL || lv == NULL || PyList_Append(rows, row) < 0
                  || PyList_Append(scores, score) < 0 || PyList_Append(levels, lv) < 0;
        Py_XDECREF(row);
        Py_XDECREF(score);
        Py_XDECREF(lv);
        if (bad) goto done;
    }
    out = PyTuple_Pack(3, rows, scores, levels);
done:
    Py_XDECREF(rows);
    Py_XDECREF(scores);
    Py_XDECREF(levels);
    PyBuffer_Release(&sv);
    PyBuffer_Release(&cv);
    return out;
}

/* A score record's "rules" member, as msgspec writes the field: left out when it is the empty
 * tuple (its default), written even when an empty list. */
static int put_rules(Buf *b, PyObject *ids) {
    if (!PyTuple_Check(ids) && !PyList_Check(ids)) {
        PyErr_Format(PyExc_TypeError, "rule ids must be a tuple or a list, not %.100s", Py_TYPE(ids)->tp_name);
        return -1;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(ids);
    if (n == 0 && PyTuple_Check(ids)) return 0;  /* the field's default */
    if (buf_put(b, ",\"rules\":[", 10) < 0) return -1;
    for (Py_ssize_t j = 0; j < n; j++) {
        if ((j && buf_put(b, ",", 1) < 0) || put_str(b, PySequence_Fast_GET_ITEM(ids, j)) < 0) return -1;
    }
    return buf_put(b, "]", 1);
}

/* score_records(record, topic, kind, model, version, backend, uids, scores, alerted, rules, encode):
 * one kind's score records, record(topic, value, key) each: value the JSON msgspec writes for the
 * row's ScoredEvent (scorer/pipeline/outcome.py, omit_defaults: "rules" left out when it is the
 * empty tuple), key its uid's UTF-8. uids: list of str; scores: list of float, written by
 * ``encode`` (msgspec) in one call; alerted: list of bool; rules: None or a list of each row's
 * rule ids (tuple or list of str). What every record of the kind shares is written once. */
static PyObject *score_records(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 11 || !PyList_Check(args[6]) || !PyList_Check(args[7]) || !PyList_Check(args[8])
        || (args[9] != Py_None && !PyList_Check(args[9]))) {
        PyErr_SetString(PyExc_TypeError, "score_records(record, topic, kind: str, model: str, version: str, "
                        "backend: str, uids: list, scores: list, alerted: list, rules: list | None, encode)");
        return NULL;
    }
    PyObject *record = args[0], *topic = args[1], *uids = args[6], *scores = args[7], *alerted = args[8],
             *rules = args[9];
    Py_ssize_t n = PyList_GET_SIZE(uids);
    if (PyList_GET_SIZE(scores) != n || PyList_GET_SIZE(alerted) != n || (rules != Py_None && PyList_GET_SIZE(rules) != n)) {
        PyErr_SetString(PyExc_ValueError, "score_records: columns of different lengths");
        return NULL;
    }
    PyObject *out = NULL, *texts = NULL;
    Buf head = {NULL, 0, 0}, middle = {NULL, 0, 0}, b = {NULL, 0, 0};
    Py_ssize_t *starts = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(2 * n + 1));
    if (starts == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t *lens = starts + n;
    if (buf_put(&head, "{\"kind\":", 8) || put_str(&head, args[2]) || buf_put(&head, ",\"uid\":", 7)
        || buf_put(&middle, ",\"model\":", 9) || put_str(&middle, args[3]) || buf_put(&middle, ",\"version\":", 11)
        || put_str(&middle, args[4]) || buf_put(&middle, ",\"backend\":", 11) || put_str(&middle, args[5])
        || buf_put(&middle, ",\"alerted\":", 11))
        goto done;
    if ((texts = float_texts(args[10], scores, starts, lens, n)) == NULL || (out = PyList_New(n)) == NULL) goto done;
    const char *numbers = PyBytes_AS_STRING(texts);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *uid = PyList_GET_ITEM(uids, i), *flag = PyList_GET_ITEM(alerted, i);
        if (!PyUnicode_Check(uid) || !PyBool_Check(flag)) {
            PyErr_SetString(PyExc_TypeError, "score_records: a uid that is no str or a flag that is no bool");
            goto fail;
        }
        Py_ssize_t un;
        const char *u = PyUnicode_AsUTF8AndSize(uid, &un);
        b.len = 0;
        if (u == NULL || buf_put(&b, head.data, head.len) || put_utf8_str(&b, u, un)
            || buf_put(&b, ",\"score\":", 9) || buf_put(&b, numbers + starts[i], lens[i])
            || buf_put(&b, middle.data, middle.len) || buf_put(&b, flag == Py_True ? "true" : "false", flag == Py_True ? 4 : 5))
            goto fail;
        if ((rules != Py_None && put_rules(&b, PyList_GET_ITEM(rules, i)) < 0) || buf_put(&b, "}", 1) < 0) goto fail;
        PyObject *parts[3] = {topic, PyBytes_FromStringAndSize(b.data, b.len), PyBytes_FromStringAndSize(u, un)};
        PyObject *rec = parts[1] && parts[2] ? PyObject_Vectorcall(record, parts, 3, NULL) : NULL;
        Py_XDECREF(parts[1]);
        Py_XDECREF(parts[2]);
        if (rec == NULL) goto fail;
        PyList_SET_ITEM(out, i, rec);
    }
    goto done;
fail:
    Py_CLEAR(out);
done:
    PyMem_Free(starts);
    PyMem_Free(head.data);
    PyMem_Free(middle.data);
    PyMem_Free(b.data);
    Py_XDECREF(texts);
    return out;
}

/* item_column(items, attr): [item[0].<attr> for item in items], items a list of (event, record)
 * tuples (a batch's rows; another item read as item[0]): one pass, the attribute read through its slot where the event's type
 * has one (msgspec structs: no look-up per row), no list of the events made first. */
static PyObject *item_column(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_Check(args[0]) || !PyUnicode_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "item_column(items: list, attr: str)");
        return NULL;
    }
    PyObject *items = args[0], *attr = args[1];
    Py_ssize_t n = PyList_GET_SIZE(items);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    PyTypeObject *type = NULL;
    PyMemberDef *member = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyList_GET_SIZE(items) != n) {  /* only an attribute's Python code could shrink it */
            PyErr_SetString(PyExc_RuntimeError, "item_column: the items changed size");
            goto fail;
        }
        PyObject *item = PyList_GET_ITEM(items, i), *event, *value;
        if (PyTuple_CheckExact(item) && PyTuple_GET_SIZE(item) >= 1) event = Py_NewRef(PyTuple_GET_ITEM(item, 0));
        else {  /* item[0], as the reference's itemgetter(0) reads it */
            Py_INCREF(item);
            event = PyObject_GetItem(item, ZERO);
            Py_DECREF(item);
            if (event == NULL) goto fail;
        }
        if (Py_TYPE(event) != type) {
            type = Py_TYPE(event);
            PyObject *descr = _PyType_Lookup(type, attr);  /* borrowed */
            member = descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)
                             && type->tp_getattro == PyObject_GenericGetAttr
                         ? ((PyMemberDescrObject *)descr)->d_member : NULL;
        }
        value = member != NULL ? PyMember_GetOne((const char *)event, member) : PyObject_GetAttr(event, attr);
        Py_DECREF(event);
        if (value == NULL) goto fail;
        PyList_SET_ITEM(out, i, value);
    }
    return out;
fail:
    Py_DECREF(out);
    return NULL;
}

static PyMethodDef methods[] = {
    {"finding", (PyCFunction)(void (*)(void))finding, METH_FASTCALL,
     "finding(consts, event, what, ref, decision, now_ms, evidence, rules) -> bytes | None: an alert's finding, "
     "as scorer.alerts.ocsf.encode(detection_finding(...)) writes it"},
    {"flow_extra", (PyCFunction)(void (*)(void))flow_extra, METH_FASTCALL,
     "flow_extra(raw, names, decode_floats, encode) -> bytes | None: a flow's statistics object as msgspec "
     "writes its dict[str, float], or None (decode the record)"},
    {"flow_split", (PyCFunction)(void (*)(void))flow_split, METH_FASTCALL,
     "flow_split(record, names, decode_floats, encode) -> (head, stats | None) | None: a flow record with its "
     "statistics cut out, and them as flow_extra writes them"},
    {"alerted", (PyCFunction)(void (*)(void))alerted, METH_FASTCALL,
     "alerted(scores, threshold, cutoffs) -> (rows, scores, levels): the rows that reach the threshold, as "
     "Decider.decide finds them with NumPy"},
    {"top_features", (PyCFunction)(void (*)(void))top_features, METH_FASTCALL,
     "top_features(x, weights, center, scale, k, names, rows) -> list[list[tuple[str, float, float]]]: each row's "
     "top positive contributions, as Decider._top_all's argsort finds them"},
    {"item_column", (PyCFunction)(void (*)(void))item_column, METH_FASTCALL,
     "item_column(items, attr) -> list: each (event, record) item's event's attribute"},
    {"score_records", (PyCFunction)(void (*)(void))score_records, METH_FASTCALL,
     "score_records(record, topic, kind, model, version, backend, uids, scores, alerted, rules, encode) -> list: "
     "one kind's score records, as msgspec writes each ScoredEvent, keyed by uid"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_findings", NULL, 0, methods};

PyMODINIT_FUNC PyInit__findings(void) {
    struct { PyObject **at; const char *name; } names[] = {
        {&S_round, "__round__"}, {&S_uid, "uid"}, {&S_ts, "ts"}, {&S_topic, "topic"}, {&S_partition, "partition"}, {&S_offset, "offset"},
        {&S_score, "score"}, {&S_severity, "severity"}, {&S_top_features, "top_features"}, {&S_by_model, "by_model"},
        {&S_by_rule, "by_rule"}, {&S_proto, "proto"}, {&S_src_ip, "src_ip"}, {&S_src_port, "src_port"},
        {&S_dst_ip, "dst_ip"}, {&S_dst_port, "dst_port"}, {&S_event_code, "event_code"}, {&S_host, "host"},
        {&S_image, "image"}, {&S_source_system, "source_system"}, {&S_rule_name, "rule_name"},
        {&S_command_line, "command_line"}, {&S_process_id, "process_id"}, {&S_parent_image, "parent_image"},
        {&S_user, "user"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if ((*names[i].at = PyUnicode_InternFromString(names[i].name)) == NULL) return NULL;
    }
    if ((SIX = PyLong_FromLong(6)) == NULL || (ZERO = PyLong_FromLong(0)) == NULL) return NULL;
    return PyModule_Create(&module);
}

/* A batch's row mask (bit r: row r) made a Python int, and an int read into words, for _edr and
 * _rules, whose masks are ints (scorer/rules/bitsets.py). From the mask's bytes by CPython's own conversion
 * (int.from_bytes'), linear in the bytes: a hexadecimal text parsed by PyLong_FromString, as
 * before, cost ~4 instructions a digit on top of writing the text, and a 2,048-row batch's
 * masks are 512 digits each. */
#ifndef SCORER_NATIVE_BITMASK_H
#define SCORER_NATIVE_BITMASK_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

/* The unsigned int of the little-endian bytes[0:width]. */
static inline PyObject *mask_from_bytes(const unsigned char *bytes, Py_ssize_t width) {
#if PY_VERSION_HEX >= 0x030D0000
    return PyLong_FromUnsignedNativeBytes(bytes, (size_t)width,
                                          Py_ASNATIVEBYTES_LITTLE_ENDIAN | Py_ASNATIVEBYTES_UNSIGNED_BUFFER);
#else
    return _PyLong_FromByteArray(bytes, (size_t)width, 1, 0);
#endif
}

/* The unsigned int whose bits are words[0:count] (64-bit words, the lowest first). */
static inline PyObject *mask_from_words(const uint64_t *words, Py_ssize_t count) {
    while (count > 1 && words[count - 1] == 0) count--;
    if (count <= 1) return PyLong_FromUnsignedLongLong(count ? words[0] : 0);
#if PY_LITTLE_ENDIAN
    return mask_from_bytes((const unsigned char *)words, count * 8);
#else
    unsigned char small[512], *bytes = count * 8 <= (Py_ssize_t)sizeof(small) ? small : PyMem_Malloc((size_t)count * 8);
    if (bytes == NULL) return PyErr_NoMemory();
    for (Py_ssize_t w = 0; w < count; w++)
        for (int k = 0; k < 8; k++) bytes[w * 8 + k] = (unsigned char)(words[w] >> (8 * k));
    PyObject *out = mask_from_bytes(bytes, count * 8);
    if (bytes != small) PyMem_Free(bytes);
    return out;
#endif
}

/* words[0:count] (64-bit words, the lowest first) set to the bits of ``mask``, a non-negative
 * int below 2**(64 * count): 0, or -1 with OverflowError (negative or wider) or TypeError. */
static inline int mask_to_words(PyObject *mask, uint64_t *words, Py_ssize_t count) {
    if (!PyLong_Check(mask)) {
        PyErr_SetString(PyExc_TypeError, "a row mask must be an int");
        return -1;
    }
    if (count == 1) { /* (the conversion of a batch of up to 64 rows, ~4x cheaper than the general one) */
        words[0] = PyLong_AsUnsignedLongLong(mask);
        return words[0] == (uint64_t)-1 && PyErr_Occurred() ? -1 : 0;
    }
#if PY_VERSION_HEX >= 0x030D0000
    Py_ssize_t need = PyLong_AsNativeBytes(mask, words, count * 8,
                                           Py_ASNATIVEBYTES_LITTLE_ENDIAN | Py_ASNATIVEBYTES_UNSIGNED_BUFFER
                                           | Py_ASNATIVEBYTES_REJECT_NEGATIVE);
    if (need < 0) return -1;
    if (need > count * 8) {
        PyErr_SetString(PyExc_OverflowError, "a row mask wider than its batch");
        return -1;
    }
#else
    if (_PyLong_AsByteArray((PyLongObject *)mask, (unsigned char *)words, (size_t)count * 8, 1, 0) < 0) return -1;
#endif
#if !PY_LITTLE_ENDIAN
    for (Py_ssize_t w = 0; w < count; w++) {
        const unsigned char *b = (const unsigned char *)&words[w];
        uint64_t v = 0;
        for (int k = 7; k >= 0; k--) v = (v << 8) | b[k];
        words[w] = v;
    }
#endif
    return 0;
}

#endif

/* The checker's word index in C: copilot/checker.py's _word_index builds the same in Python (the reference,
 * compared in tests/test_native.py). index(text, size, groups) returns, for the text's words (its runs of \w
 * characters, as re's \w reads a str: alphanumeric or "_"), the group ids groups[word] lists as bytes (1 at each
 * such id, one byte per id up to the largest in groups; groups is a dict checker.py never changes once given: a new
 * one for each change), and, for each word start, the first `size` characters from there mapped to the ascending
 * positions where they begin a word.
 *
 * The rest of the phrase rules' inner loop is here too (route, candidates, tries, present) and the sentence
 * scan (sentence_ends): what checker.py's _py_ functions of the same names do, without a Python object for each step.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static inline int is_word(Py_UCS4 ch) {
    if (ch < 128) return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
    return Py_UNICODE_ISALNUM(ch);
}

/* The groups of the last `groups` dict given (a snapshot checker.py never changes; held here), by the bytes of the
 * one-byte words, so a one-byte text's words are looked up without a str object each. */
static PyObject *table_groups;
static uint64_t group_mask;                  /* table size - 1 */
static const Py_UCS1 **group_text;           /* NULL marks an empty slot */
static Py_ssize_t *group_len;
static PyObject **group_ids;                 /* the word's list of ids (borrowed from table_groups) */
static Py_ssize_t max_id;

static uint64_t fnv(const Py_UCS1 *text, Py_ssize_t len) {
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < len; i++) h = (h ^ text[i]) * 1099511628211ULL;
    return h;
}

static int build_groups(PyObject *groups) {
    uint64_t slots = 16;
    while (slots < (uint64_t)PyDict_GET_SIZE(groups) * 2 + 1) slots <<= 1;
    const Py_UCS1 **text = PyMem_Calloc(slots, sizeof(Py_UCS1 *));
    Py_ssize_t *len = PyMem_Calloc(slots, sizeof(Py_ssize_t));
    PyObject **ids = PyMem_Calloc(slots, sizeof(PyObject *));
    Py_ssize_t top = -1, pos = 0;
    PyObject *word, *list;
    if (!text || !len || !ids) {
        PyErr_NoMemory();
        goto fail;
    }
    while (PyDict_Next(groups, &pos, &word, &list)) {
        if (!PyUnicode_Check(word) || !PyList_Check(list)) {
            PyErr_SetString(PyExc_TypeError, "index: groups must map str words to lists of ids");
            goto fail;
        }
        for (Py_ssize_t g = 0; g < PyList_GET_SIZE(list); g++) {
            Py_ssize_t id = PyLong_AsSsize_t(PyList_GET_ITEM(list, g));
            if (id < 0) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "index: group ids are 0 or more");
                goto fail;
            }
            if (id > top) top = id;
        }
        if (PyUnicode_KIND(word) != PyUnicode_1BYTE_KIND) continue; /* never a word of a one-byte text */
        Py_ssize_t n = PyUnicode_GET_LENGTH(word);
        const Py_UCS1 *data = PyUnicode_1BYTE_DATA(word);
        uint64_t slot = fnv(data, n) & (slots - 1);
        while (text[slot]) slot = (slot + 1) & (slots - 1);
        text[slot] = data, len[slot] = n, ids[slot] = list;
    }
    PyMem_Free(group_text);
    PyMem_Free(group_len);
    PyMem_Free(group_ids);
    group_text = text, group_len = len, group_ids = ids, group_mask = slots - 1, max_id = top;
    Py_INCREF(groups);
    Py_XSETREF(table_groups, groups);
    return 0;
fail:
    PyMem_Free(text);
    PyMem_Free(len);
    PyMem_Free(ids);
    return -1;
}

/* Marks the ids in `list` in `found` (a byte per id). */
static int add_ids(char *found, PyObject *list) {
    for (Py_ssize_t g = 0; g < PyList_GET_SIZE(list); g++) {
        Py_ssize_t v = PyLong_AsSsize_t(PyList_GET_ITEM(list, g));
        if (v < 0 || v > max_id) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "index: group id out of range");
            return -1;
        }
        found[v] = 1;
    }
    return 0;
}

static PyObject *word_index(PyObject *module, PyObject *args) {
    PyObject *text, *groups;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "UnO!", &text, &size, &PyDict_Type, &groups)) return NULL;
    if (size < 1) {
        PyErr_SetString(PyExc_ValueError, "size must be at least 1");
        return NULL;
    }
    if (groups != table_groups && build_groups(groups)) return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *sat = PyBytes_FromStringAndSize(NULL, max_id + 1), *keyed = PyDict_New();
    if (sat == NULL || keyed == NULL) goto fail;
    char *found = PyBytes_AS_STRING(sat);
    memset(found, 0, (size_t)(max_id + 1));
    Py_ssize_t i = 0;
    while (i < n) {
        if (!is_word(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t start = i;
        while (i < n && is_word(PyUnicode_READ(kind, data, i))) i++;
        PyObject *ids = NULL;
        if (kind == PyUnicode_1BYTE_KIND) {
            const Py_UCS1 *w = (const Py_UCS1 *)data + start;
            Py_ssize_t len = i - start;
            for (uint64_t slot = fnv(w, len) & group_mask; group_text[slot]; slot = (slot + 1) & group_mask)
                if (group_len[slot] == len && memcmp(group_text[slot], w, (size_t)len) == 0) {
                    ids = group_ids[slot];
                    break;
                }
        } else {
            PyObject *word = PyUnicode_Substring(text, start, i);
            if (word == NULL) goto fail;
            ids = PyDict_GetItemWithError(groups, word); /* borrowed */
            Py_DECREF(word);
            if (ids == NULL && PyErr_Occurred()) goto fail;
        }
        if (ids != NULL && add_ids(found, ids)) goto fail;
        PyObject *key = PyUnicode_Substring(text, start, start + size < n ? start + size : n);
        if (key == NULL) goto fail;
        PyObject *at = PyDict_GetItemWithError(keyed, key); /* borrowed */
        PyObject *pos = PyLong_FromSsize_t(start);
        if (pos == NULL || (at == NULL && PyErr_Occurred())) {
            Py_XDECREF(pos);
            Py_DECREF(key);
            goto fail;
        }
        int failed;
        if (at == NULL) {
            PyObject *list = PyList_New(1);
            if (list == NULL) {
                Py_DECREF(pos);
                Py_DECREF(key);
                goto fail;
            }
            PyList_SET_ITEM(list, 0, pos); /* steals pos */
            failed = PyDict_SetItem(keyed, key, list);
            Py_DECREF(list);
        } else {
            failed = PyList_Append(at, pos);
            Py_DECREF(pos);
        }
        Py_DECREF(key);
        if (failed) goto fail;
    }
    PyObject *result = PyTuple_Pack(2, sat, keyed);
    Py_DECREF(sat);
    Py_DECREF(keyed);
    return result;
fail:
    Py_XDECREF(sat);
    Py_XDECREF(keyed);
    return NULL;
}

typedef struct {
    Py_ssize_t start;
    PyObject *match;
} Hit;

static PyObject *str_end;

/* `match` (a pattern's bound match method) tried at each of positions[0..n) (ints, borrowed), and of the matches
 * found the earliest, then the earliest starting after it ends, and so on (finditer's leftmost, non-overlapping
 * matches). A match tried at p starts at p. */
static PyObject *try_all(PyObject *match, PyObject *scan, PyObject *const *positions, Py_ssize_t count) {
    PyObject *call[2] = {scan, NULL};
    Hit small[16], *hits = small;
    Py_ssize_t n = 0, cap = 16;
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        call[1] = positions[i];
        PyObject *m = PyObject_Vectorcall(match, call, 2, NULL);
        if (m == NULL) goto done;
        if (m == Py_None) {
            Py_DECREF(m);
            continue;
        }
        Py_ssize_t start = PyLong_AsSsize_t(call[1]);
        if (start == -1 && PyErr_Occurred()) {
            Py_DECREF(m);
            goto done;
        }
        if (n == cap) {
            Hit *bigger = PyMem_Malloc(sizeof(Hit) * cap * 2);
            if (bigger == NULL) {
                Py_DECREF(m);
                PyErr_NoMemory();
                goto done;
            }
            memcpy(bigger, hits, sizeof(Hit) * n);
            if (hits != small) PyMem_Free(hits);
            hits = bigger;
            cap *= 2;
        }
        /* insertion keeps equal starts in the order found, as Python's stable sort does */
        Py_ssize_t j = n++;
        while (j > 0 && hits[j - 1].start > start) {
            hits[j] = hits[j - 1];
            j--;
        }
        hits[j].start = start;
        hits[j].match = m;
    }
    result = PyList_New(0);
    if (result == NULL) goto done;
    Py_ssize_t after = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (hits[i].start < after) continue;
        if (PyList_Append(result, hits[i].match)) goto fail;
        if (n > 1) {
            PyObject *end = PyObject_CallMethodNoArgs(hits[i].match, str_end);
            if (end == NULL) goto fail;
            after = PyLong_AsSsize_t(end);
            Py_DECREF(end);
            if (after == -1 && PyErr_Occurred()) goto fail;
        }
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    for (Py_ssize_t i = 0; i < n; i++) Py_DECREF(hits[i].match);
    if (hits != small) PyMem_Free(hits);
    return result;
}

/* A growing array of borrowed position objects. */
typedef struct {
    PyObject **items, *small[64];
    Py_ssize_t n, cap;
} Positions;

static int positions_add(Positions *ps, PyObject *pos) {
    if (ps->n == ps->cap) {
        PyObject **bigger = PyMem_Malloc(sizeof(PyObject *) * (size_t)ps->cap * 2);
        if (bigger == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(bigger, ps->items, sizeof(PyObject *) * (size_t)ps->n);
        if (ps->items != ps->small) PyMem_Free(ps->items);
        ps->items = bigger;
        ps->cap *= 2;
    }
    ps->items[ps->n++] = pos;
    return 0;
}

static void positions_free(Positions *ps) {
    if (ps->items != ps->small) PyMem_Free(ps->items);
}

static int compare_positions(const void *a, const void *b) {
    Py_ssize_t x = *(const Py_ssize_t *)a, y = *(const Py_ssize_t *)b;
    return (x > y) - (x < y);
}

/* A growing array of positions. */
typedef struct {
    Py_ssize_t *items, small[64];
    Py_ssize_t n, cap;
} Offsets;

static int offsets_add(Offsets *os, Py_ssize_t at) {
    if (os->n == os->cap) {
        Py_ssize_t *bigger = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)os->cap * 2);
        if (bigger == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(bigger, os->items, sizeof(Py_ssize_t) * (size_t)os->n);
        if (os->items != os->small) PyMem_Free(os->items);
        os->items = bigger;
        os->cap *= 2;
    }
    os->items[os->n++] = at;
    return 0;
}

/* Whether scan[from:to) holds a line break. */
static int has_newline(PyObject *scan, Py_ssize_t from, Py_ssize_t to) {
    if (PyUnicode_KIND(scan) == PyUnicode_1BYTE_KIND)
        return memchr(PyUnicode_1BYTE_DATA(scan) + from, '\n', (size_t)(to - from)) != NULL;
    Py_ssize_t at = PyUnicode_FindChar(scan, '\n', from, to, 1);
    return at == -2 ? -1 : at >= 0;
}

/* Checks `anchor` is (width, route, others) with a route `routed` holds, and gives its width and route. */
static int anchor_parts(PyObject *anchor, PyObject *routed, Py_ssize_t *width, Py_ssize_t *route) {
    if (!PyTuple_Check(anchor) || PyTuple_GET_SIZE(anchor) != 3 || !PyLong_Check(PyTuple_GET_ITEM(anchor, 1)) ||
        !PyTuple_Check(PyTuple_GET_ITEM(anchor, 2)) || !PyList_Check(routed)) {
        PyErr_SetString(PyExc_TypeError, "anchor must be None or (width: int, route: int, others: tuple[str]) "
                                         "with routed a list");
        return -1;
    }
    *width = PyLong_AsSsize_t(PyTuple_GET_ITEM(anchor, 0));
    if (*width == -1 && PyErr_Occurred()) return -1;
    *route = PyLong_AsSsize_t(PyTuple_GET_ITEM(anchor, 1));
    if (*route == -1 && PyErr_Occurred()) return -1;
    if (*route < 0 || *route >= PyList_GET_SIZE(routed)) {
        PyErr_SetString(PyExc_IndexError, "anchor: a route the text was not routed for (loaded after it?)");
        return -1;
    }
    return 0;
}

/* Where the anchor's strings are in scan, ascending, onto `ahead` (which may hold some already): what
 * checker._py_anchor_hits returns (a checked anchor: see anchor_parts). */
static int anchor_offsets(Offsets *ahead, PyObject *scan, PyObject *routed, PyObject *anchor, Py_ssize_t route) {
    PyObject *others = PyTuple_GET_ITEM(anchor, 2);
    PyObject *words = PyList_GET_ITEM(routed, route);
    Py_ssize_t n = PyUnicode_GET_LENGTH(scan);
    if (words != Py_None) {
        if (!PyList_Check(words)) {
            PyErr_SetString(PyExc_TypeError, "anchor: routed holds None or lists of positions");
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(words); i++) {
            Py_ssize_t at = PyLong_AsSsize_t(PyList_GET_ITEM(words, i));
            if ((at == -1 && PyErr_Occurred()) || offsets_add(ahead, at)) return -1;
        }
    }
    for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(others); t++) {
        PyObject *text = PyTuple_GET_ITEM(others, t);
        if (!PyUnicode_Check(text)) {
            PyErr_SetString(PyExc_TypeError, "anchor: others must be a tuple of str");
            return -1;
        }
        Py_ssize_t at = PyUnicode_Find(scan, text, 0, n, 1);
        while (at >= 0) {
            if (offsets_add(ahead, at)) return -1;
            at = PyUnicode_Find(scan, text, at + 1, n, 1);
        }
        if (at == -2) return -1;
    }
    if (PyTuple_GET_SIZE(others) == 0) return 0; /* a route's positions are ascending and distinct already */
    qsort(ahead->items, (size_t)ahead->n, sizeof(Py_ssize_t), compare_positions);
    /* a string that is also another's word may be found twice */
    Py_ssize_t unique = 0;
    for (Py_ssize_t i = 0; i < ahead->n; i++)
        if (unique == 0 || ahead->items[unique - 1] != ahead->items[i]) ahead->items[unique++] = ahead->items[i];
    ahead->n = unique;
    return 0;
}

/* Keeps of ps the positions after which one of the anchor's strings begins before the line ends, at least its
 * width further on: what checker._py_anchored keeps. `anchor` is None (keep all) or (width, route, others). */
static int anchor_filter(Positions *ps, PyObject *scan, PyObject *routed, PyObject *anchor) {
    if (anchor == Py_None || ps->n == 0) return 0;
    Py_ssize_t width, route;
    if (anchor_parts(anchor, routed, &width, &route)) return -1;
    Py_ssize_t n = PyUnicode_GET_LENGTH(scan);
    int result = -1;
    Offsets ahead = {.n = 0, .cap = 64};
    ahead.items = ahead.small;
    if (anchor_offsets(&ahead, scan, routed, anchor, route)) goto done;
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < ps->n; i++) {
        Py_ssize_t p = PyLong_AsSsize_t(ps->items[i]);
        if (p == -1 && PyErr_Occurred()) goto done;
        if (p < 0 || p > n) continue; /* never a match there: nothing to try */
        /* the first string at or after p + width */
        Py_ssize_t lo = 0, hi = ahead.n;
        while (lo < hi) {
            Py_ssize_t mid = lo + (hi - lo) / 2;
            if (ahead.items[mid] < p + width) lo = mid + 1;
            else hi = mid;
        }
        if (lo == ahead.n) continue;
        int broken = has_newline(scan, p, ahead.items[lo]);
        if (broken < 0) goto done;
        if (!broken) ps->items[kept++] = ps->items[i];
    }
    ps->n = kept;
    result = 0;
done:
    if (ahead.items != ahead.small) PyMem_Free(ahead.items);
    return result;
}

/* anchor_hits(scan, routed, anchor) -> what checker._py_anchor_hits returns. */
static PyObject *anchor_hits(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    Py_ssize_t width, route;
    if (nargs != 3 || !PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "anchor_hits(scan: str, routed: list, anchor: tuple)");
        return NULL;
    }
    if (anchor_parts(args[2], args[1], &width, &route)) return NULL;
    PyObject *result = NULL;
    Offsets ahead = {.n = 0, .cap = 64};
    ahead.items = ahead.small;
    if (anchor_offsets(&ahead, args[0], args[1], args[2], route) || (result = PyList_New(ahead.n)) == NULL) goto done;
    for (Py_ssize_t i = 0; i < ahead.n; i++) {
        PyObject *at = PyLong_FromSsize_t(ahead.items[i]);
        if (at == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, i, at);
    }
done:
    if (ahead.items != ahead.small) PyMem_Free(ahead.items);
    return result;
}

/* tries(match, scan, groups[, anchor, routed]) -> what checker._py_tries returns: try_all at every position in
 * `groups` (lists of ints) that anchor_filter keeps. */
static PyObject *tries(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if ((nargs != 3 && nargs != 5) || !PyUnicode_Check(args[1]) || !PyList_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "tries(match, scan: str, groups: list[list[int]][, anchor, routed: list])");
        return NULL;
    }
    PyObject *groups = args[2], *result = NULL;
    Positions ps = {.n = 0, .cap = 64};
    ps.items = ps.small;
    for (Py_ssize_t g = 0; g < PyList_GET_SIZE(groups); g++) {
        PyObject *at = PyList_GET_ITEM(groups, g);
        if (!PyList_Check(at)) {
            PyErr_SetString(PyExc_TypeError, "tries: each group must be a list of positions");
            goto done;
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(at); i++)
            if (positions_add(&ps, PyList_GET_ITEM(at, i))) goto done;
    }
    if (nargs == 5 && args[3] != Py_None && args[4] != Py_None && anchor_filter(&ps, args[1], args[4], args[3]))
        goto done;
    result = try_all(args[0], args[1], ps.items, ps.n);
done:
    positions_free(&ps);
    return result;
}

/* Whether scan[p:] starts with `prefix`. */
static int starts_with(PyObject *scan, PyObject *prefix, Py_ssize_t p) {
    Py_ssize_t len = PyUnicode_GET_LENGTH(prefix), n = PyUnicode_GET_LENGTH(scan);
    if (len > n - p) return 0;
    if (PyUnicode_KIND(scan) == PyUnicode_1BYTE_KIND && PyUnicode_KIND(prefix) == PyUnicode_1BYTE_KIND)
        return memcmp(PyUnicode_1BYTE_DATA(scan) + p, PyUnicode_1BYTE_DATA(prefix), (size_t)len) == 0;
    return (int)PyUnicode_Tailmatch(scan, prefix, p, n, -1);
}

/* The route table compiled, for the last (table, count) given (checker.py only adds routes to its table, counting
 * each after adding it, so a table compiled for a count holds all the routes below it). For each key, the routes wanting its word starts and, when the key
 * and all its longer strings are one-byte and short enough, a bit mask of those routes for each longer string, so a
 * word start is tested once for each string length rather than once for each longer string of each route. */
typedef struct {
    uint64_t code; /* the string's bytes, the first in the lowest */
    Py_ssize_t len;
    uint64_t mask; /* bit i: routes[i] has this longer string */
} Longer;

typedef struct {
    PyObject *key;     /* NULL marks an empty slot */
    Py_hash_t hash;
    PyObject *entries; /* ((route, longer strings), ...), held: the table may be given a new tuple for the key */
    Py_ssize_t n;      /* routes below count, in entries' order */
    Py_ssize_t *routes;
    int fast;          /* the masks below apply */
    uint64_t always;   /* routes taking every start under the key */
    Py_ssize_t nlonger;
    Longer *longer;    /* by (len, code) */
    Py_ssize_t nlens, lens[9]; /* where each length's strings start in longer, and nlonger after the last */
} KeyRoutes;

static PyObject *routes_table;
static Py_ssize_t routes_count = -1, routes_slots;
static KeyRoutes *routes_by_key;

static void routes_free(KeyRoutes *keys, Py_ssize_t slots) {
    if (keys == NULL) return;
    for (Py_ssize_t i = 0; i < slots; i++) {
        Py_XDECREF(keys[i].key);
        Py_XDECREF(keys[i].entries);
        PyMem_Free(keys[i].routes);
        PyMem_Free(keys[i].longer);
    }
    PyMem_Free(keys);
}

static int compare_longer(const void *a, const void *b) {
    const Longer *x = a, *y = b;
    if (x->len != y->len) return (x->len > y->len) - (x->len < y->len);
    return (x->code > y->code) - (x->code < y->code);
}

/* The first `len` (at most 8) bytes at `data`, the first in the lowest. */
static inline uint64_t pack(const Py_UCS1 *data, Py_ssize_t len) {
    uint64_t code = 0;
    for (Py_ssize_t i = len - 1; i >= 0; i--) code = (code << 8) | data[i];
    return code;
}

/* pack() of the `len` characters of a str's data (of `kind`) from `at` into *code; 0 when one is above U+00FF, so
 * that no one-byte string can be there. */
static inline int pack_any(int kind, const void *data, Py_ssize_t at, Py_ssize_t len, uint64_t *code) {
    if (kind == PyUnicode_1BYTE_KIND) {
        *code = pack((const Py_UCS1 *)data + at, len);
        return 1;
    }
    uint64_t packed = 0;
    for (Py_ssize_t i = len - 1; i >= 0; i--) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, at + i);
        if (ch > 0xFF) return 0;
        packed = (packed << 8) | ch;
    }
    *code = packed;
    return 1;
}

/* Compiles one key's entries into `k`; slow (no masks) when something does not fit them. */
static int compile_key(KeyRoutes *k, PyObject *key, PyObject *entries, Py_ssize_t count) {
    if (!PyTuple_Check(entries)) {
        PyErr_SetString(PyExc_TypeError, "route: table values must be tuples of (route, longer strings)");
        return -1;
    }
    Py_ssize_t many = PyTuple_GET_SIZE(entries), strings = 0;
    k->key = Py_NewRef(key), k->entries = Py_NewRef(entries), k->n = 0, k->always = 0, k->nlonger = 0;
    k->routes = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(many ? many : 1));
    if (k->routes == NULL) return PyErr_NoMemory(), -1;
    k->fast = PyUnicode_KIND(key) == PyUnicode_1BYTE_KIND;
    for (Py_ssize_t e = 0; e < many; e++) {
        PyObject *entry = PyTuple_GET_ITEM(entries, e);
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2 || !PyTuple_Check(PyTuple_GET_ITEM(entry, 1))) {
            PyErr_SetString(PyExc_TypeError, "route: table entries must be (route: int, longer: tuple[str])");
            return -1;
        }
        Py_ssize_t r = PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 0));
        if (r == -1 && PyErr_Occurred()) return -1;
        if (r < 0) {
            PyErr_SetString(PyExc_ValueError, "route: routes are numbered from 0");
            return -1;
        }
        PyObject *longer = PyTuple_GET_ITEM(entry, 1);
        for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(longer); t++) {
            PyObject *text = PyTuple_GET_ITEM(longer, t);
            if (!PyUnicode_Check(text)) {
                PyErr_SetString(PyExc_TypeError, "route: the table's longer strings must be str");
                return -1;
            }
            if (PyUnicode_KIND(text) != PyUnicode_1BYTE_KIND || PyUnicode_GET_LENGTH(text) > 8 ||
                PyUnicode_GET_LENGTH(text) == 0)
                k->fast = 0;
        }
        if (r >= count) continue; /* numbered after the text was routed for count routes */
        k->routes[k->n++] = r;
        strings += PyTuple_GET_SIZE(longer);
    }
    if (k->n > 64) k->fast = 0;
    if (!k->fast) return 0;
    k->longer = PyMem_Malloc(sizeof(Longer) * (size_t)(strings ? strings : 1));
    if (k->longer == NULL) return PyErr_NoMemory(), -1;
    Py_ssize_t i = 0;
    for (Py_ssize_t e = 0; e < many; e++) {
        PyObject *entry = PyTuple_GET_ITEM(entries, e), *longer = PyTuple_GET_ITEM(entry, 1);
        Py_ssize_t r = PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 0));
        if (r >= count) continue;
        uint64_t bit = (uint64_t)1 << i++;
        if (PyTuple_GET_SIZE(longer) == 0) k->always |= bit;
        for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(longer); t++) {
            PyObject *text = PyTuple_GET_ITEM(longer, t);
            Py_ssize_t len = PyUnicode_GET_LENGTH(text);
            uint64_t code = pack(PyUnicode_1BYTE_DATA(text), len);
            Py_ssize_t j = 0;
            while (j < k->nlonger && !(k->longer[j].len == len && k->longer[j].code == code)) j++;
            if (j == k->nlonger) k->longer[k->nlonger++] = (Longer){code, len, 0};
            k->longer[j].mask |= bit;
        }
    }
    qsort(k->longer, (size_t)k->nlonger, sizeof(Longer), compare_longer);
    k->nlens = 0;
    for (Py_ssize_t j = 0; j < k->nlonger; j++)
        if (j == 0 || k->longer[j].len != k->longer[j - 1].len) k->lens[k->nlens++] = j;
    k->lens[k->nlens] = k->nlonger;
    return 0;
}

static int build_routes(PyObject *table, Py_ssize_t count) {
    Py_ssize_t slots = 16;
    while (slots < PyDict_GET_SIZE(table) * 2 + 1) slots <<= 1;
    KeyRoutes *keys = PyMem_Calloc((size_t)slots, sizeof(KeyRoutes));
    if (keys == NULL) return PyErr_NoMemory(), -1;
    Py_ssize_t pos = 0;
    PyObject *key, *entries;
    while (PyDict_Next(table, &pos, &key, &entries)) {
        if (!PyUnicode_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "route: table keys must be str");
            goto fail;
        }
        Py_hash_t hash = PyObject_Hash(key);
        if (hash == -1) goto fail;
        Py_ssize_t slot = (Py_ssize_t)((uint64_t)hash & (uint64_t)(slots - 1));
        while (keys[slot].key) slot = (slot + 1) & (slots - 1);
        keys[slot].hash = hash;
        if (compile_key(&keys[slot], key, entries, count)) goto fail;
    }
    routes_free(routes_by_key, routes_slots);
    routes_by_key = keys, routes_slots = slots, routes_count = count;
    Py_INCREF(table);
    Py_XSETREF(routes_table, table);
    return 0;
fail:
    routes_free(keys, slots);
    return -1;
}

/* The compiled routes of `key`, or NULL when the table has none. */
static KeyRoutes *routes_of(PyObject *key) {
    Py_hash_t hash = PyObject_Hash(key);
    if (hash == -1) {
        PyErr_Clear(); /* a str's hash never fails */
        return NULL;
    }
    Py_ssize_t slot = (Py_ssize_t)((uint64_t)hash & (uint64_t)(routes_slots - 1));
    while (routes_by_key[slot].key) {
        KeyRoutes *k = &routes_by_key[slot];
        if (k->key == key || (k->hash == hash && PyUnicode_GET_LENGTH(k->key) == PyUnicode_GET_LENGTH(key) &&
                              PyUnicode_Compare(k->key, key) == 0))
            return k;
        slot = (slot + 1) & (routes_slots - 1);
    }
    return NULL;
}

/* Appends `pos` to routed[route] (a list made on the first); marks the route in `sort` when it had starts from
 * another key, which leaves it out of order. */
static int route_add(PyObject *routed, Py_ssize_t route, PyObject *pos, Py_ssize_t *key_of, Py_ssize_t key,
                     unsigned char *sort) {
    PyObject *found = PyList_GET_ITEM(routed, route);
    if (found == Py_None) {
        if ((found = PyList_New(0)) == NULL) return -1;
        PyList_SET_ITEM(routed, route, found); /* takes the new list's reference; None's is dropped here */
        Py_DECREF(Py_None);
    } else if (key_of[route] != key) {
        sort[route] = 1;
    }
    key_of[route] = key;
    return PyList_Append(found, pos);
}

/* Sorts a list of ints ascending: by insertion for the short lists routes get (list.sort costs more to set up than
 * they take to sort), by list.sort for longer ones. */
static int sort_positions(PyObject *list) {
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (n > 32) return PyList_Sort(list);
    Py_ssize_t at[32];
    PyObject *items[32];
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(list, i);
        Py_ssize_t v = PyLong_AsSsize_t(item);
        if (v == -1 && PyErr_Occurred()) return -1;
        Py_ssize_t j = i;
        while (j > 0 && at[j - 1] > v) {
            at[j] = at[j - 1];
            items[j] = items[j - 1];
            j--;
        }
        at[j] = v;
        items[j] = item;
    }
    for (Py_ssize_t i = 0; i < n; i++) PyList_SET_ITEM(list, i, items[i]); /* the same references, reordered */
    return 0;
}

/* route(scan, keyed, table, count) -> what checker._py_route returns: for each of `count` routes, None or the
 * ascending word starts of keyed ({key: [positions]}) that table ({key: ((route, longer strings), ...)}) sends it,
 * kept where one of the longer strings follows; routes from count on are left out. Each text key is looked up once,
 * however many routes want it. */
static PyObject *route(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyUnicode_Check(args[0]) || !PyDict_Check(args[1]) || !PyDict_Check(args[2]) ||
        !PyLong_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "route(scan: str, keyed: dict, table: dict, count: int)");
        return NULL;
    }
    PyObject *scan = args[0], *keyed = args[1], *table = args[2];
    Py_ssize_t count = PyLong_AsSsize_t(args[3]);
    if (count < 0) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "route: count must be >= 0");
        return NULL;
    }
    if ((table != routes_table || count != routes_count) && build_routes(table, count)) return NULL;
    PyObject *routed = PyList_New(count);
    if (routed == NULL) return NULL;
    for (Py_ssize_t i = 0; i < count; i++) PyList_SET_ITEM(routed, i, Py_NewRef(Py_None));
    unsigned char *sort = PyMem_Calloc((size_t)(count ? count : 1), 1);
    Py_ssize_t *key_of = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(count ? count : 1));
    if (sort == NULL || key_of == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    int kind = PyUnicode_KIND(scan);
    const void *data = PyUnicode_DATA(scan);
    Py_ssize_t n = PyUnicode_GET_LENGTH(scan), pos = 0, nkey = 0;
    PyObject *key, *at;
    while (PyDict_Next(keyed, &pos, &key, &at)) {
        nkey++;
        if (!PyUnicode_Check(key) || !PyList_Check(at)) {
            PyErr_SetString(PyExc_TypeError, "route: keyed must map str keys to lists of positions");
            goto fail;
        }
        KeyRoutes *k = routes_of(key);
        if (k == NULL || k->n == 0) continue;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(at); i++) {
            PyObject *item = PyList_GET_ITEM(at, i);
            Py_ssize_t p = PyLong_AsSsize_t(item);
            if (p == -1 && PyErr_Occurred()) goto fail;
            if (k->fast) {
                uint64_t mask = k->always;
                for (Py_ssize_t g = 0; g < k->nlens; g++) {
                    /* the strings of one length: the text's bytes there looked up among them */
                    Py_ssize_t lo = k->lens[g], hi = k->lens[g + 1], len = k->longer[lo].len;
                    if (p < 0 || len > n - p) break; /* longer ones do not fit either */
                    uint64_t code;
                    if (!pack_any(kind, data, p, len, &code)) break; /* the longer ones hold the same character */
                    while (lo < hi) {
                        Py_ssize_t mid = lo + (hi - lo) / 2;
                        if (k->longer[mid].code < code) lo = mid + 1;
                        else hi = mid;
                    }
                    if (lo < k->lens[g + 1] && k->longer[lo].code == code) mask |= k->longer[lo].mask;
                }
                for (Py_ssize_t b = 0; mask; b++, mask >>= 1)
                    if ((mask & 1) && route_add(routed, k->routes[b], item, key_of, nkey, sort)) goto fail;
                continue;
            }
            Py_ssize_t r = 0;
            for (Py_ssize_t e = 0; e < PyTuple_GET_SIZE(k->entries); e++) {
                PyObject *entry = PyTuple_GET_ITEM(k->entries, e), *longer = PyTuple_GET_ITEM(entry, 1);
                if (PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 0)) >= count) continue;
                int ok = PyTuple_GET_SIZE(longer) == 0;
                for (Py_ssize_t t = 0; t < PyTuple_GET_SIZE(longer) && !ok; t++)
                    if ((ok = starts_with(scan, PyTuple_GET_ITEM(longer, t), p)) < 0) goto fail;
                if (ok && route_add(routed, k->routes[r], item, key_of, nkey, sort)) goto fail;
                r++;
            }
        }
    }
    for (Py_ssize_t r = 0; r < count; r++)
        if (sort[r] && sort_positions(PyList_GET_ITEM(routed, r))) goto fail;
    PyMem_Free(sort);
    PyMem_Free(key_of);
    return routed;
fail:
    PyMem_Free(sort);
    PyMem_Free(key_of);
    Py_DECREF(routed);
    return NULL;
}

/* The word starts by their first `size` characters, fewer than the index's: {prefix: [lists of keyed]}. */
static PyObject *shorten(PyObject *keyed, Py_ssize_t size) {
    PyObject *short_ = PyDict_New();
    if (short_ == NULL) return NULL;
    Py_ssize_t pos = 0;
    PyObject *key, *at;
    while (PyDict_Next(keyed, &pos, &key, &at)) {
        Py_ssize_t len = PyUnicode_GET_LENGTH(key);
        PyObject *prefix = PyUnicode_Substring(key, 0, len < size ? len : size);
        if (prefix == NULL) goto fail;
        PyObject *lists = PyDict_GetItemWithError(short_, prefix); /* borrowed */
        int failed;
        if (lists == NULL) {
            if (PyErr_Occurred() || (lists = PyList_New(0)) == NULL) {
                Py_DECREF(prefix);
                goto fail;
            }
            failed = PyDict_SetItem(short_, prefix, lists) || PyList_Append(lists, at);
            Py_DECREF(lists);
        } else {
            failed = PyList_Append(lists, at);
        }
        Py_DECREF(prefix);
        if (failed) goto fail;
    }
    return short_;
fail:
    Py_DECREF(short_);
    return NULL;
}

/* candidates(scan, keyed, short, starts, size[, routes, routed]) -> what checker._py_candidates returns; `short`
 * caches shorten() by size for the text (the _Doc's own dict); `routes` (a tuple of ints, one per start, -1 for none)
 * says which starts' strings are a route of `routed` instead. */
static PyObject *candidates(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if ((nargs != 5 && nargs != 7) || !PyUnicode_Check(args[0]) || !PyDict_Check(args[1]) || !PyDict_Check(args[2]) ||
        !PyTuple_Check(args[3]) ||
        (nargs == 7 && (!PyTuple_Check(args[5]) || PyTuple_GET_SIZE(args[5]) != PyTuple_GET_SIZE(args[3]) ||
                        !PyList_Check(args[6])))) {
        PyErr_SetString(PyExc_TypeError, "candidates(scan: str, keyed: dict, short: dict, starts: tuple, size: int"
                                         "[, routes: tuple[int] (one per start), routed: list])");
        return NULL;
    }
    PyObject *scan = args[0], *keyed = args[1], *cache = args[2], *starts = args[3];
    PyObject *routes = nargs == 7 ? args[5] : NULL, *routed = nargs == 7 ? args[6] : NULL;
    Py_ssize_t full = PyLong_AsSsize_t(args[4]);
    if (full == -1 && PyErr_Occurred()) return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(scan);
    PyObject *found = PyList_New(0), *lists = NULL;
    if (found == NULL) return NULL;
    for (Py_ssize_t e = 0; e < PyTuple_GET_SIZE(starts); e++) {
        PyObject *entry = PyTuple_GET_ITEM(starts, e);
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 3 || !PyTuple_Check(PyTuple_GET_ITEM(entry, 1)) ||
            !PyUnicode_Check(PyTuple_GET_ITEM(entry, 2))) {
            PyErr_SetString(PyExc_TypeError, "candidates: each start must be (size, strings, head)");
            goto fail;
        }
        Py_ssize_t size = PyLong_AsSsize_t(PyTuple_GET_ITEM(entry, 0));
        if (size == -1 && PyErr_Occurred()) goto fail;
        PyObject *keys = PyTuple_GET_ITEM(entry, 1), *head = PyTuple_GET_ITEM(entry, 2);
        if (size == 0) {
            /* strings without a word: every place they occur */
            for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(keys); k++) {
                PyObject *key = PyTuple_GET_ITEM(keys, k), *at = NULL;
                Py_ssize_t p = PyUnicode_Find(scan, key, 0, n, 1);
                while (p >= 0) {
                    PyObject *pos = PyLong_FromSsize_t(p);
                    if (pos == NULL || (at == NULL && (at = PyList_New(0)) == NULL) || PyList_Append(at, pos)) {
                        Py_XDECREF(pos);
                        Py_XDECREF(at);
                        goto fail;
                    }
                    Py_DECREF(pos);
                    p = PyUnicode_Find(scan, key, p + 1, n, 1);
                }
                if (p == -2 || (at != NULL && PyList_Append(found, at))) {
                    Py_XDECREF(at);
                    goto fail;
                }
                Py_XDECREF(at);
            }
            continue;
        }
        lists = PyList_New(0);
        if (lists == NULL) goto fail;
        Py_ssize_t route = -1;
        if (routes != NULL) {
            route = PyLong_AsSsize_t(PyTuple_GET_ITEM(routes, e));
            if (route == -1 && PyErr_Occurred()) goto fail;
            if (route >= PyList_GET_SIZE(routed)) {
                PyErr_SetString(PyExc_IndexError, "candidates: a route the text was not routed for (loaded after it?)");
                goto fail;
            }
        }
        if (route >= 0) {
            PyObject *at = PyList_GET_ITEM(routed, route);
            if (at != Py_None && (!PyList_Check(at) || PyList_Append(lists, at))) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "candidates: routed holds None or lists");
                goto fail;
            }
        } else if (size == full) {
            for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(keys); k++) {
                PyObject *at = PyDict_GetItemWithError(keyed, PyTuple_GET_ITEM(keys, k)); /* borrowed */
                if (at == NULL ? PyErr_Occurred() != NULL : PyList_Append(lists, at) != 0) goto fail;
            }
        } else {
            PyObject *by = PyTuple_GET_ITEM(entry, 0);
            PyObject *short_ = PyDict_GetItemWithError(cache, by); /* borrowed */
            if (short_ == NULL) {
                if (PyErr_Occurred() || (short_ = shorten(keyed, size)) == NULL) goto fail;
                int failed = PyDict_SetItem(cache, by, short_);
                Py_DECREF(short_); /* the cache holds it */
                if (failed) goto fail;
            }
            for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(keys); k++) {
                PyObject *more = PyDict_GetItemWithError(short_, PyTuple_GET_ITEM(keys, k)); /* borrowed */
                if (more == NULL) {
                    if (PyErr_Occurred()) goto fail;
                    continue;
                }
                for (Py_ssize_t i = 0; i < PyList_GET_SIZE(more); i++)
                    if (PyList_Append(lists, PyList_GET_ITEM(more, i))) goto fail;
            }
        }
        Py_ssize_t back = PyUnicode_GET_LENGTH(head);
        for (Py_ssize_t l = 0; l < PyList_GET_SIZE(lists); l++) {
            PyObject *at = PyList_GET_ITEM(lists, l);
            if (!back) {
                if (PyList_Append(found, at)) goto fail;
                continue;
            }
            /* the words found start right after `head` (", " before "not"): the match starts at the head */
            PyObject *after = NULL;
            for (Py_ssize_t i = 0; i < PyList_GET_SIZE(at); i++) {
                Py_ssize_t q = PyLong_AsSsize_t(PyList_GET_ITEM(at, i));
                if (q == -1 && PyErr_Occurred()) goto fail_after;
                if (q < back) continue;
                Py_ssize_t same = PyUnicode_Tailmatch(scan, head, q - back, q, -1);
                if (same < 0) goto fail_after;
                if (!same) continue;
                PyObject *pos = PyLong_FromSsize_t(q - back);
                if (pos == NULL || (after == NULL && (after = PyList_New(0)) == NULL) || PyList_Append(after, pos)) {
                    Py_XDECREF(pos);
                    goto fail_after;
                }
                Py_DECREF(pos);
            }
            if (after != NULL) {
                int failed = PyList_Append(found, after);
                Py_DECREF(after);
                if (failed) goto fail;
            }
            continue;
        fail_after:
            Py_XDECREF(after);
            goto fail;
        }
        Py_CLEAR(lists);
    }
    return found;
fail:
    Py_XDECREF(lists);
    Py_DECREF(found);
    return NULL;
}

/* sentence_ends(text) -> what checker._py_sentence_ends returns: for each match of checker._SENTENCE_END, in order,
 * (1, after the stop, start of the spaces, end) for a stop with its closing quotes and the spaces after it, or
 * (0, start, start, end) for a line break and the spaces after it. re's \s reads a str as Py_UNICODE_ISSPACE does. */
static inline int is_closer(Py_UCS4 c) {
    return c == '"' || c == '\'' || c == 0x201D || c == 0x2019 || c == ')' || c == ']';
}

static int append_end(PyObject *found, int stop, Py_ssize_t end, Py_ssize_t gap, Py_ssize_t after) {
    PyObject *item = Py_BuildValue("(innn)", stop, end, gap, after);
    if (item == NULL) return -1;
    int failed = PyList_Append(found, item);
    Py_DECREF(item);
    return failed;
}

static PyObject *sentence_ends(PyObject *module, PyObject *text) {
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "sentence_ends(text: str)");
        return NULL;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *found = PyList_New(0);
    if (found == NULL) return NULL;
    Py_ssize_t i = 0;
    while (i < n) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == '.' || c == '!' || c == '?') {
            Py_ssize_t j = i + 1, k;
            while (j < n && is_closer(PyUnicode_READ(kind, data, j))) j++;
            for (k = j; k < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, k));) k++;
            if (k > j) {
                if (append_end(found, 1, i + 1, j, k)) goto fail;
                i = k;
            } else {
                i++; /* no space after it: not an end, and the closers after it are not either */
            }
        } else if (c == '\n') {
            Py_ssize_t k = i + 1;
            while (k < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, k))) k++;
            if (append_end(found, 0, i, i, k)) goto fail;
            i = k;
        } else {
            i++;
        }
    }
    return found;
fail:
    Py_DECREF(found);
    return NULL;
}

/* present(scan, subs) -> bytes, one per string in `subs` (a tuple of str): 1 where it occurs in scan, as `sub in
 * scan` says. For a one-byte scan, the ASCII strings are found in one pass, through a table of them by their first
 * two characters (or first one, for one-character strings), built for the last tuple given; the others, and every
 * string in a wider scan, are searched for one by one. */
static PyObject *table_subs; /* the tuple the table was built for (a strong reference) */
static Py_ssize_t table_size;
static int32_t *head1, *head2, *chain; /* first string by first byte / first two bytes; next with the same start */
static unsigned char *searched;        /* strings the table leaves to a plain search */

static int build_table(PyObject *subs) {
    Py_ssize_t n = PyTuple_GET_SIZE(subs);
    int32_t *h1 = PyMem_Malloc(256 * sizeof(int32_t)), *h2 = PyMem_Malloc(65536 * sizeof(int32_t));
    int32_t *ch = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(int32_t));
    unsigned char *se = PyMem_Calloc((size_t)(n ? n : 1), 1);
    if (!h1 || !h2 || !ch || !se) {
        PyMem_Free(h1);
        PyMem_Free(h2);
        PyMem_Free(ch);
        PyMem_Free(se);
        PyErr_NoMemory();
        return -1;
    }
    memset(h1, 0xff, 256 * sizeof(int32_t));
    memset(h2, 0xff, 65536 * sizeof(int32_t));
    for (Py_ssize_t j = n - 1; j >= 0; j--) {
        PyObject *sub = PyTuple_GET_ITEM(subs, j);
        if (!PyUnicode_Check(sub)) {
            PyMem_Free(h1);
            PyMem_Free(h2);
            PyMem_Free(ch);
            PyMem_Free(se);
            PyErr_SetString(PyExc_TypeError, "present: the strings must be str");
            return -1;
        }
        Py_ssize_t len = PyUnicode_GET_LENGTH(sub);
        if (len == 0 || !PyUnicode_IS_ASCII(sub)) {
            se[j] = 1;
            continue;
        }
        const Py_UCS1 *b = PyUnicode_1BYTE_DATA(sub);
        int32_t *head = len == 1 ? &h1[b[0]] : &h2[(b[0] << 8) | b[1]];
        ch[j] = *head;
        *head = (int32_t)j;
    }
    PyMem_Free(head1);
    PyMem_Free(head2);
    PyMem_Free(chain);
    PyMem_Free(searched);
    head1 = h1, head2 = h2, chain = ch, searched = se, table_size = n;
    Py_INCREF(subs);
    Py_XSETREF(table_subs, subs);
    return 0;
}

static PyObject *present(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "present(scan: str, subs: tuple[str, ...])");
        return NULL;
    }
    PyObject *scan = args[0], *subs = args[1];
    if (subs != table_subs && build_table(subs)) return NULL;
    PyObject *result = PyBytes_FromStringAndSize(NULL, table_size);
    if (result == NULL) return NULL;
    char *found = PyBytes_AS_STRING(result);
    memset(found, 0, (size_t)table_size);
    int one_byte = PyUnicode_KIND(scan) == PyUnicode_1BYTE_KIND;
    if (one_byte) {
        const Py_UCS1 *text = PyUnicode_1BYTE_DATA(scan);
        Py_ssize_t n = PyUnicode_GET_LENGTH(scan);
        for (Py_ssize_t i = 0; i < n; i++) {
            for (int32_t j = head1[text[i]]; j >= 0; j = chain[j]) found[j] = 1;
            if (i + 1 == n) break;
            for (int32_t j = head2[(text[i] << 8) | text[i + 1]]; j >= 0; j = chain[j]) {
                if (found[j]) continue;
                PyObject *sub = PyTuple_GET_ITEM(subs, j);
                Py_ssize_t len = PyUnicode_GET_LENGTH(sub);
                if (len <= n - i && memcmp(text + i, PyUnicode_1BYTE_DATA(sub), (size_t)len) == 0) found[j] = 1;
            }
        }
    }
    for (Py_ssize_t j = 0; j < table_size; j++) {
        if (one_byte && !searched[j]) continue;
        int has = PyUnicode_Contains(scan, PyTuple_GET_ITEM(subs, j));
        if (has < 0) {
            Py_DECREF(result);
            return NULL;
        }
        found[j] = (char)has;
    }
    return result;
}

/* made(cls, setters, *values) -> cls.__new__(cls) with each value set through the matching setter of `setters` (a
 * tuple of the class's own getset descriptors, one per value): what checker.Rule.finding does with object.__setattr__,
 * without a Python call for each attribute (a frozen dataclass has no other way in). */
static PyObject *made(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 2 || !PyType_Check(args[0]) || !PyTuple_Check(args[1]) || PyTuple_GET_SIZE(args[1]) != nargs - 2) {
        PyErr_SetString(PyExc_TypeError, "made(cls: type, setters: tuple, *values) with a setter for each value");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    PyObject *setters = args[1];
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(setters); i++) {
        PyObject *d = PyTuple_GET_ITEM(setters, i);
        /* only the class's own descriptors: another type's setter would write into the wrong struct */
        if (!Py_IS_TYPE(d, &PyGetSetDescr_Type) || ((PyGetSetDescrObject *)d)->d_getset->set == NULL ||
            PyDescr_TYPE(d) != cls) {
            PyErr_SetString(PyExc_TypeError, "made: setters must be settable getset descriptors of cls");
            return NULL;
        }
    }
    if (cls->tp_new == NULL) {
        PyErr_SetString(PyExc_TypeError, "made: cls cannot be instantiated");
        return NULL;
    }
    PyObject *empty = PyTuple_New(0);
    if (empty == NULL) return NULL;
    PyObject *obj = cls->tp_new(cls, empty, NULL);
    Py_DECREF(empty);
    if (obj == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(setters); i++) {
        PyGetSetDef *def = ((PyGetSetDescrObject *)PyTuple_GET_ITEM(setters, i))->d_getset;
        if (def->set(obj, args[i + 2], def->closure)) {
            Py_DECREF(obj);
            return NULL;
        }
    }
    return obj;
}

static PyMethodDef methods[] = {
    {"index", word_index, METH_VARARGS, "index(text, size, groups) -> ({group ids of the words}, {first size characters: word starts})"},
    {"route", (PyCFunction)(void (*)(void))route, METH_FASTCALL,
     "route(scan, keyed, table, count) -> for each route, None or the ascending word starts the table sends it"},
    {"tries", (PyCFunction)(void (*)(void))tries, METH_FASTCALL,
     "tries(match, scan, groups[, anchor, routed]) -> leftmost non-overlapping matches tried at the positions in groups "
     "where the anchor follows"},
    {"anchor_hits", (PyCFunction)(void (*)(void))anchor_hits, METH_FASTCALL,
     "anchor_hits(scan, routed, anchor) -> where the anchor's strings are, ascending"},
    {"made", (PyCFunction)(void (*)(void))made, METH_FASTCALL,
     "made(cls, setters, *values) -> cls.__new__(cls) with each value set through its getset descriptor"},
    {"present", (PyCFunction)(void (*)(void))present, METH_FASTCALL,
     "present(scan, subs) -> bytes: 1 for each string of subs found in scan"},
    {"sentence_ends", sentence_ends, METH_O, "sentence_ends(text) -> [(stop, end, gap, after)] for each sentence end"},
    {"candidates", (PyCFunction)(void (*)(void))candidates, METH_FASTCALL,
     "candidates(scan, keyed, short, starts, size) -> lists of positions where matches can start"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "copilot._word_index", "The checker's word index in C.", -1, methods,
};

PyMODINIT_FUNC PyInit__word_index(void) {
    str_end = PyUnicode_InternFromString("end");
    if (str_end == NULL) return NULL;
    return PyModule_Create(&module);
}

/* The learned rules' per-sentence sums in C: copilot/classifier.py's SentenceModel.probabilities, for the usual model
 * (word 1-3-grams), does the same in Python and stays the reference; tests/test_native.py compares the two.
 *
 * A Scorer holds the model's rows in a flat array and finds each n-gram by a number made from its words' numbers
 * (1-grams a, 2-grams a*base+b, 3-grams (a*base+b)*base+c), so no n-gram string is ever built. Scorer.sums(tokens)
 * returns the column sums the Python code computes, added in the same order: first the n-grams seen once, in the
 * order they first appear, then each repeated one with tf = 1 + log(count) (squared for the first column, the norm).
 * Scorer.ascii_sums(sentence) does the same for an ASCII sentence, splitting it into tokens as classifier.tokens does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>

typedef struct {
    PyObject_HEAD
    PyObject *ids;      /* dict: word -> its number, 1 .. base-1 */
    uint64_t base;
    Py_ssize_t width;   /* numbers per row */
    uint64_t mask;      /* hash table size - 1 */
    uint64_t *keys;     /* n-gram numbers; 0 marks an empty slot */
    Py_ssize_t *index;  /* row of each slot */
    double *rows;       /* row-major, width numbers each */
    /* the ASCII words of ids again, found by their bytes so an ASCII sentence's tokens need no str objects */
    uint64_t word_mask;     /* word table size - 1 */
    const char **word_text; /* NULL marks an empty slot; points into word_bytes */
    Py_ssize_t *word_len;
    uint64_t *word_num;
    char *word_bytes;
} Scorer;

static uint64_t hash_bytes(const char *text, Py_ssize_t len) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (Py_ssize_t i = 0; i < len; i++) h = (h ^ (unsigned char)text[i]) * 1099511628211ULL;
    return h;
}

/* The number of the ASCII word text[0..len), 0 when the model has no such word. */
static uint64_t ascii_word_number(const Scorer *s, const char *text, Py_ssize_t len) {
    uint64_t slot = hash_bytes(text, len) & s->word_mask;
    while (s->word_text[slot]) {
        if (s->word_len[slot] == len && memcmp(s->word_text[slot], text, (size_t)len) == 0) return s->word_num[slot];
        slot = (slot + 1) & s->word_mask;
    }
    return 0;
}

static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

static Py_ssize_t find_row(const Scorer *s, uint64_t key) {
    uint64_t slot = mix(key) & s->mask;
    while (s->keys[slot]) {
        if (s->keys[slot] == key) return s->index[slot];
        slot = (slot + 1) & s->mask;
    }
    return -1;
}

static void Scorer_dealloc(Scorer *self) {
    Py_XDECREF(self->ids);
    PyMem_Free(self->keys);
    PyMem_Free(self->index);
    PyMem_Free(self->rows);
    PyMem_Free(self->word_text);
    PyMem_Free(self->word_len);
    PyMem_Free(self->word_num);
    PyMem_Free(self->word_bytes);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Scorer(ids: dict[str, int], codes: list[int], rows: list[tuple[float, ...]], width: int) */
static int Scorer_init(Scorer *self, PyObject *args, PyObject *kwds) {
    PyObject *ids, *codes, *rows;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "O!O!O!n", &PyDict_Type, &ids, &PyList_Type, &codes, &PyList_Type, &rows, &width))
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(codes);
    if (PyList_GET_SIZE(rows) != n || width < 1) {
        PyErr_SetString(PyExc_ValueError, "one row of width numbers per code");
        return -1;
    }
    uint64_t size = 16;
    while (size < (uint64_t)n * 2 + 1) size <<= 1;
    self->keys = PyMem_Calloc(size, sizeof(uint64_t));
    self->index = PyMem_Calloc(size, sizeof(Py_ssize_t));
    self->rows = PyMem_Calloc(n ? (size_t)n * width : 1, sizeof(double));
    if (!self->keys || !self->index || !self->rows) {
        PyErr_NoMemory();
        return -1;
    }
    self->mask = size - 1;
    self->width = width;
    self->base = (uint64_t)PyDict_GET_SIZE(ids) + 1;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t key = PyLong_AsUnsignedLongLong(PyList_GET_ITEM(codes, i));
        if (PyErr_Occurred()) return -1;
        if (key == 0) {
            PyErr_SetString(PyExc_ValueError, "n-gram numbers start at 1");
            return -1;
        }
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != width) {
            PyErr_SetString(PyExc_ValueError, "each row must be a tuple of width floats");
            return -1;
        }
        for (Py_ssize_t k = 0; k < width; k++) {
            double v = PyFloat_AsDouble(PyTuple_GET_ITEM(row, k));
            if (v == -1.0 && PyErr_Occurred()) return -1;
            self->rows[i * width + k] = v;
        }
        uint64_t slot = mix(key) & self->mask;
        while (self->keys[slot] && self->keys[slot] != key) slot = (slot + 1) & self->mask;
        self->keys[slot] = key;
        self->index[slot] = i;
    }
    /* the word table: twice as many slots as words, and the ASCII words' bytes in one block */
    uint64_t slots = 16;
    size_t total = 1;
    Py_ssize_t pos = 0;
    PyObject *word, *number;
    while (PyDict_Next(ids, &pos, &word, &number)) {
        if (!PyUnicode_Check(word)) {
            PyErr_SetString(PyExc_ValueError, "ids must map str words to numbers");
            return -1;
        }
        if (PyUnicode_IS_ASCII(word)) total += (size_t)PyUnicode_GET_LENGTH(word);
    }
    while (slots < (uint64_t)PyDict_GET_SIZE(ids) * 2 + 1) slots <<= 1;
    PyMem_Free(self->word_text);
    PyMem_Free(self->word_len);
    PyMem_Free(self->word_num);
    PyMem_Free(self->word_bytes);
    self->word_text = PyMem_Calloc(slots, sizeof(const char *));
    self->word_len = PyMem_Calloc(slots, sizeof(Py_ssize_t));
    self->word_num = PyMem_Calloc(slots, sizeof(uint64_t));
    self->word_bytes = PyMem_Malloc(total);
    if (!self->word_text || !self->word_len || !self->word_num || !self->word_bytes) {
        PyErr_NoMemory();
        return -1;
    }
    self->word_mask = slots - 1;
    char *next = self->word_bytes;
    pos = 0;
    while (PyDict_Next(ids, &pos, &word, &number)) {
        if (!PyUnicode_IS_ASCII(word)) continue; /* never a token of an ASCII sentence */
        uint64_t num = PyLong_AsUnsignedLongLong(number);
        if (PyErr_Occurred()) return -1;
        Py_ssize_t len = PyUnicode_GET_LENGTH(word);
        memcpy(next, PyUnicode_1BYTE_DATA(word), (size_t)len);
        uint64_t slot = hash_bytes(next, len) & self->word_mask;
        while (self->word_text[slot]) slot = (slot + 1) & self->word_mask;
        self->word_text[slot] = next;
        self->word_len[slot] = len;
        self->word_num[slot] = num;
        next += len;
    }
    Py_INCREF(ids);
    Py_XSETREF(self->ids, ids);
    return 0;
}

/* Adds to sums[0..width) the column sums for a sentence whose words have the numbers seq[0..n) (0: not in the
 * model); returns how many of its n-grams the model has (0: sums untouched), -1 with an exception set. */
static Py_ssize_t sums_into(Scorer *self, const uint64_t *seq, Py_ssize_t n, double *sums) {
    Py_ssize_t width = self->width, found = 0;
    if (n == 0) return 0;
    Py_ssize_t small_hits[96], small_counts[96];
    int big = n * 3 > 96;
    Py_ssize_t *hits = big ? PyMem_Malloc((size_t)n * 3 * sizeof(Py_ssize_t)) : small_hits;
    Py_ssize_t *counts = big ? PyMem_Malloc((size_t)n * 3 * sizeof(Py_ssize_t)) : small_counts;
    if (!hits || !counts) {
        if (big) {
            PyMem_Free(hits);
            PyMem_Free(counts);
        }
        PyErr_NoMemory();
        return -1;
    }
    /* the n-grams in the order the Python code lists them: 1-grams, then 2-grams, then 3-grams */
    for (Py_ssize_t i = 0; i < n; i++)
        if (seq[i]) {
            Py_ssize_t r = find_row(self, seq[i]);
            if (r >= 0) hits[found++] = r;
        }
    for (Py_ssize_t i = 0; i + 1 < n; i++)
        if (seq[i] && seq[i + 1]) {
            Py_ssize_t r = find_row(self, seq[i] * self->base + seq[i + 1]);
            if (r >= 0) hits[found++] = r;
        }
    for (Py_ssize_t i = 0; i + 2 < n; i++)
        if (seq[i] && seq[i + 1] && seq[i + 2]) {
            Py_ssize_t r = find_row(self, (seq[i] * self->base + seq[i + 1]) * self->base + seq[i + 2]);
            if (r >= 0) hits[found++] = r;
        }
    if (found == 0) goto done;
    /* counts[j]: how often hits[j] occurs, kept on its first occurrence (the earliest equal one); 0 on the others */
    for (Py_ssize_t j = 0; j < found; j++) {
        counts[j] = 1;
        for (Py_ssize_t i = 0; i < j; i++)
            if (hits[i] == hits[j]) {
                counts[j] = 0;
                counts[i]++;
                break;
            }
    }
    for (Py_ssize_t j = 0; j < found; j++)
        if (counts[j] == 1) {
            const double *row = self->rows + hits[j] * width;
            for (Py_ssize_t k = 0; k < width; k++) sums[k] += row[k];
        }
    for (Py_ssize_t j = 0; j < found; j++)
        if (counts[j] > 1) {
            const double *row = self->rows + hits[j] * width;
            double tf = 1.0 + log((double)counts[j]);
            sums[0] += tf * tf * row[0];
            for (Py_ssize_t k = 1; k < width; k++) sums[k] += tf * row[k];
        }
done:
    if (big) {
        PyMem_Free(hits);
        PyMem_Free(counts);
    }
    return found;
}

/* The column sums for a sentence whose words have the numbers seq[0..n), as a tuple, or None when the model has
 * none of its n-grams. */
static PyObject *sums_of(Scorer *self, const uint64_t *seq, Py_ssize_t n) {
    double *sums = PyMem_Calloc((size_t)self->width, sizeof(double));
    if (!sums) return PyErr_NoMemory();
    PyObject *result = NULL;
    Py_ssize_t found = sums_into(self, seq, n, sums);
    if (found < 0) goto done;
    if (found == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = PyTuple_New(self->width);
    if (result == NULL) goto done;
    for (Py_ssize_t k = 0; k < self->width; k++) {
        PyObject *v = PyFloat_FromDouble(sums[k]);
        if (v == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyTuple_SET_ITEM(result, k, v);
    }
done:
    PyMem_Free(sums);
    return result;
}

/* The number of a word (a str), 0 when the model has no such word; (uint64_t)-1 with an exception set on error. */
static uint64_t word_number(Scorer *self, PyObject *word) {
    PyObject *v = PyDict_GetItemWithError(self->ids, word);
    if (v == NULL) return PyErr_Occurred() ? (uint64_t)-1 : 0;
    return PyLong_AsUnsignedLongLong(v);
}

/* sums(tokens: list[str]) -> tuple[float, ...] | None (None: no n-gram of the sentence is in the model) */
static PyObject *Scorer_sums(Scorer *self, PyObject *tokens) {
    if (!PyList_Check(tokens)) {
        PyErr_SetString(PyExc_TypeError, "tokens must be a list of str");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(tokens);
    if (n == 0) Py_RETURN_NONE;
    uint64_t *seq = PyMem_Malloc((size_t)n * sizeof(uint64_t));
    if (!seq) return PyErr_NoMemory();
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        seq[i] = word_number(self, PyList_GET_ITEM(tokens, i));
        if (PyErr_Occurred()) goto done;
    }
    result = sums_of(self, seq, n);
done:
    PyMem_Free(seq);
    return result;
}

static int is_alnum(Py_UCS1 c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }

/* The numbers of an ASCII sentence's tokens into seq (room for its length + 1); returns how many.
 *
 * The tokens are classifier._TOKEN's on the lower-cased sentence: runs of letters and digits joined by single
 * apostrophes ("don't", "rock'n'roll"), and each ? and !. In ASCII, [^\W_] is exactly [A-Za-z0-9]. */
static Py_ssize_t ascii_numbers(const Scorer *self, const Py_UCS1 *text, Py_ssize_t size, uint64_t *seq, char *buf) {
    Py_ssize_t n = 0;
    for (Py_ssize_t i = 0; i < size;) {
        Py_ssize_t start = i;
        if (is_alnum(text[i])) {
            while (i < size && is_alnum(text[i])) i++;
            while (i + 1 < size && text[i] == '\'' && is_alnum(text[i + 1])) {
                i += 2;
                while (i < size && is_alnum(text[i])) i++;
            }
        } else if (text[i] == '?' || text[i] == '!') {
            i++;
        } else {
            i++;
            continue;
        }
        for (Py_ssize_t k = start; k < i; k++) {
            Py_UCS1 c = text[k];
            buf[k - start] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        }
        seq[n++] = ascii_word_number(self, buf, i - start);
    }
    return n;
}

/* The sums of an ASCII sentence into sums[0..width): what sums_into returns. */
static Py_ssize_t ascii_sums_into(Scorer *self, PyObject *sentence, double *sums) {
    const Py_UCS1 *text = PyUnicode_1BYTE_DATA(sentence);
    Py_ssize_t size = PyUnicode_GET_LENGTH(sentence);
    uint64_t small_seq[128];
    char small[256];
    uint64_t *seq = size < 128 ? small_seq : PyMem_Malloc(((size_t)size + 1) * sizeof(uint64_t));
    char *buf = size < (Py_ssize_t)sizeof(small) ? small : PyMem_Malloc((size_t)size + 1);
    Py_ssize_t found = -1;
    if (!seq || !buf)
        PyErr_NoMemory();
    else
        found = sums_into(self, seq, ascii_numbers(self, text, size, seq, buf), sums);
    if (seq != small_seq) PyMem_Free(seq);
    if (buf != small) PyMem_Free(buf);
    return found;
}

static int check_ascii(PyObject *sentence) {
    if (!PyUnicode_Check(sentence) || !PyUnicode_IS_ASCII(sentence)) {
        PyErr_SetString(PyExc_ValueError, "ascii_sums takes an ASCII str; use sums(tokens(sentence))");
        return -1;
    }
    return 0;
}

/* ascii_sums(sentence: str) -> what sums(classifier.tokens(sentence)) returns, for an ASCII sentence. */
static PyObject *Scorer_ascii_sums(Scorer *self, PyObject *sentence) {
    if (check_ascii(sentence)) return NULL;
    double *sums = PyMem_Calloc((size_t)self->width, sizeof(double));
    if (!sums) return PyErr_NoMemory();
    PyObject *result = NULL;
    Py_ssize_t found = ascii_sums_into(self, sentence, sums);
    if (found == 0) result = Py_NewRef(Py_None);
    if (found > 0 && (result = PyTuple_New(self->width)) != NULL)
        for (Py_ssize_t k = 0; k < self->width; k++) {
            PyObject *v = PyFloat_FromDouble(sums[k]);
            if (v == NULL) {
                Py_CLEAR(result);
                break;
            }
            PyTuple_SET_ITEM(result, k, v);
        }
    PyMem_Free(sums);
    return result;
}

/* ascii_probabilities(sentence, intercepts, categories) -> {category: P(category | sentence)} for an ASCII sentence:
 * what classifier.SentenceModel.probabilities computes from ascii_sums, with the same operations in the same order
 * (z = intercept + sum / norm, clamped to +-30, then the logistic), so the same floats. */
static PyObject *Scorer_ascii_probabilities(Scorer *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyTuple_Check(args[1]) || !PyTuple_Check(args[2]) ||
        PyTuple_GET_SIZE(args[1]) != self->width - 1 || PyTuple_GET_SIZE(args[2]) != self->width - 1) {
        PyErr_SetString(PyExc_TypeError,
                        "ascii_probabilities(sentence, intercepts: tuple, categories: tuple), one per column");
        return NULL;
    }
    if (check_ascii(args[0])) return NULL;
    double small[16];
    double *sums = self->width <= 16 ? small : PyMem_Malloc((size_t)self->width * sizeof(double));
    if (!sums) return PyErr_NoMemory();
    for (Py_ssize_t k = 0; k < self->width; k++) sums[k] = 0.0;
    PyObject *result = NULL;
    Py_ssize_t found = ascii_sums_into(self, args[0], sums);
    if (found < 0) goto done;
    double norm = found ? sqrt(sums[0]) : 1.0;
    if (norm == 0.0) norm = 1.0;
    if ((result = PyDict_New()) == NULL) goto done;
    for (Py_ssize_t k = 0; k + 1 < self->width; k++) {
        double z = PyFloat_AsDouble(PyTuple_GET_ITEM(args[1], k));
        if (z == -1.0 && PyErr_Occurred()) goto fail;
        if (found) z = z + sums[k + 1] / norm;
        /* max(-30.0, min(30.0, z)) */
        double clamped = z < 30.0 ? z : 30.0;
        clamped = clamped > -30.0 ? clamped : -30.0;
        PyObject *p = PyFloat_FromDouble(1.0 / (1.0 + exp(-clamped)));
        if (p == NULL) goto fail;
        int failed = PyDict_SetItem(result, PyTuple_GET_ITEM(args[2], k), p);
        Py_DECREF(p);
        if (failed) goto fail;
    }
    goto done;
fail:
    Py_CLEAR(result);
done:
    if (sums != small) PyMem_Free(sums);
    return result;
}

static PyMethodDef Scorer_methods[] = {
    {"sums", (PyCFunction)Scorer_sums, METH_O, "Column sums of the rows of a sentence's n-grams, or None."},
    {"ascii_sums", (PyCFunction)Scorer_ascii_sums, METH_O, "sums(tokens(sentence)) for an ASCII sentence."},
    {"ascii_probabilities", (PyCFunction)(void (*)(void))Scorer_ascii_probabilities, METH_FASTCALL,
     "{category: probability} for an ASCII sentence, given the intercepts and categories."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScorerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "copilot._sentence_model.Scorer",
    .tp_basicsize = sizeof(Scorer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The rows of a word 1-3-gram sentence model, looked up by n-gram number.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scorer_init,
    .tp_dealloc = (destructor)Scorer_dealloc,
    .tp_methods = Scorer_methods,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "copilot._sentence_model", "The learned rules' per-sentence sums in C.", -1, NULL,
};

PyMODINIT_FUNC PyInit__sentence_model(void) {
    if (PyType_Ready(&ScorerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&ScorerType);
    if (PyModule_AddObject(m, "Scorer", (PyObject *)&ScorerType) < 0) {
        Py_DECREF(&ScorerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* The C interface of libqa_spm.so, the plugin that holds every SentencePiece call.
 *
 * Why a plugin: Debian's libsentencepiece exports its own copy of protobuf 3.14, and LibTorch loads
 * the system protobuf 3.21; linked into one executable they interpose each other and crash before
 * main(). qa-train therefore never links libsentencepiece: it dlopen()s this plugin with
 * RTLD_LOCAL | RTLD_DEEPBIND, so SentencePiece's protobuf symbols stay out of the global scope.
 * Only C types cross this boundary.
 *
 * Every function that can fail returns 0 on success, or non-zero after writing a NUL-terminated
 * message into err[0..err_len). */
#ifndef QA_SPM_PLUGIN_ABI_H
#define QA_SPM_PLUGIN_ABI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QA_SPM_ABI_VERSION 1

typedef struct qa_spm qa_spm;

int qa_spm_abi_version(void);

/* Loads a model from the bytes of a serialized ModelProto (the content of a spiece.model file). */
int qa_spm_load(const char* data, size_t size, qa_spm** out, char* err, size_t err_len);
void qa_spm_free(qa_spm* model);

int qa_spm_piece_size(const qa_spm* model);
/* 1 if `id` is a control piece (pad, eos, ...), else 0. */
int qa_spm_is_control(const qa_spm* model, int id);

/* Encodes UTF-8 text to ids. Writes at most `cap` ids and sets *n to the full count: when *n > cap,
 * call again with a larger buffer. */
int qa_spm_encode(const qa_spm* model, const char* text, size_t len, int* ids, size_t cap, size_t* n, char* err,
                  size_t err_len);
/* Decodes ids to UTF-8 text (control ids produce nothing). Same buffer protocol as qa_spm_encode. */
int qa_spm_decode(const qa_spm* model, const int* ids, size_t n_ids, char* out, size_t cap, size_t* len, char* err,
                  size_t err_len);

/* Trains a model on `count` sentences with SentencePiece trainer flags `args`
 * ("--model_type=unigram --vocab_size=..."). On success *model_out holds the serialized model
 * (free it with qa_spm_free_buffer). `seed` makes the result reproducible. */
int qa_spm_train(const char* const* sentences, const size_t* lengths, size_t count, const char* args,
                 unsigned int seed, char** model_out, size_t* model_size, char* err, size_t err_len);
void qa_spm_free_buffer(char* buffer);

#ifdef __cplusplus
}
#endif

#endif /* QA_SPM_PLUGIN_ABI_H */

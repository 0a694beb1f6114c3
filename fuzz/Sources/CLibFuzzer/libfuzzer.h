#include <stddef.h>
#include <stdint.h>

/* libFuzzer's driver (compiler-rt's FuzzerInterface.h), linked in by
 * -sanitize=fuzzer: parses libFuzzer's flags and runs the fuzzing loop. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

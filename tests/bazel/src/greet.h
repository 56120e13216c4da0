/* greet.h — the library half of the Bazel test project. */
const char *greet(void);

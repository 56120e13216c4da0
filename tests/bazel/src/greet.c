/* greet.c — the library half of the Bazel test project. */
#include "src/greet.h"

const char *greet(void)
{
	return "hello from a helios-cached build";
}

/* main.c — the program of the Bazel test project. */
#include <stdio.h>
#include "src/greet.h"

int main(void)
{
	puts(greet());
	return 0;
}

/* leak_canary.c — leaks on purpose. Built only under ASan, where ctest expects it to fail: proof
 * that LeakSanitizer is really checking the rest of the suite. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	void *volatile p = malloc(4096);
	printf("leaking %p\n", p);
	p = NULL;
	return 0;
}

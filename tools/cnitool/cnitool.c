/* cnitool: placeholder until the implementation lands (issue 6). */
#include <stdio.h>

int main(void)
{
	fputs("cnitool: not implemented yet\n", stderr);
	return 2;
}

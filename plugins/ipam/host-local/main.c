/* host-local executable: the plugin table from verbs.c, and the marker by which the main plugins
 * recognise this binary as ours, built from the same sources, before running it in-process. */
#include "hostlocal.h"

__attribute__((section(".note.cnic"), used)) static const char marker[] = CNIC_MARKER("host-local");

int main(void)
{
	return cni_plugin_main(&hostlocal_plugin);
}

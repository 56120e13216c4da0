/* powerloss.h — a simulated power cut, in two halves (SQLite's crash VFS and ALICE are the models).
 *
 * In the process that runs the store, pl_install() puts an I/O table in front of the system one:
 * every call is counted and, at a chosen call, the process is killed (SIGKILL: all threads stop at
 * once, between two file calls). Before each change reaches the file system the table appends to a
 * journal outside the store what a power cut could undo: the old bytes of every 512-byte sector a
 * write or truncate touches, each file's size at its last sync, created, renamed and removed names
 * (a removed or overwritten file is kept as a hard link in the stash), directory syncs, and a copy
 * of the LMDB index each time the index says it is durable. A sync only journals: the file system
 * under the test is the page cache, and the journal decides what was on the platter.
 *
 * After the process died, pl_cut() reads the journal and, from a seed, does what a power cut does
 * to everything not made durable since: each unsynced block (512 B or 4 KiB, chosen by the seed)
 * keeps its new bytes, goes back to its old ones (zeros past the synced size: a tail of the right
 * length filled with zeros), or is garbled; a file's size is its synced or its current size or in
 * between; each directory keeps a prefix of its unsynced name changes (so a crash may keep a later
 * write of one file and lose an earlier one of another: reordering); the index is the copy taken
 * at its last durable point or what LMDB had written since. The same journal and seed always give
 * the same image. */
#ifndef HL_TEST_POWERLOSS_H
#define HL_TEST_POWERLOSS_H
#include <stdint.h>

/* Installs the journaling table (in the process to be cut). The journal is created at journal;
 * stash is a directory on the store's file system for kept links and index copies; index_dir is
 * where the store keeps its LMDB index (its state now is durable). crash_at: the file call (1, 2,
 * …) before which the process kills itself; 0 = never. */
void pl_install(const char *journal, const char *stash, const char *index_dir, uint64_t crash_at);
/* File calls counted so far. */
uint64_t pl_calls(void);

typedef struct pl_report {
	unsigned block;             /* 512 or 4096 */
	uint64_t files;             /* files with unsynced changes */
	uint64_t kept, reverted, garbled; /* unsynced blocks */
	uint64_t resized;           /* files whose size is not their current one */
	uint64_t names_undone;      /* unsynced creates, renames, removals undone */
	int index_rolled_back;      /* the index is its last durable copy */
} pl_report;

/* Applies the cut described by journal to the files under root it names (stash as given to
 * pl_install), then removes the stash. Returns 0 or an errno. */
int pl_cut(const char *journal, const char *stash, const char *root, uint64_t seed, pl_report *rep);

#endif

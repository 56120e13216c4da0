/* names_int.h — private to store/names*.c: the transactions and table walks the name tables
 * share. Reads begin with hl_nm_read_begin (HL_NOTFOUND: the tables do not exist yet); writes
 * with hl_nm_write_begin (read-only and stopped stores refused) and end with hl_nm_write_end
 * (commit on 0, and an index sync when the store syncs every write). */
#ifndef HL_STORE_NAMES_INT_H
#define HL_STORE_NAMES_INT_H
#include <lmdb.h>
#include "store/store.h"

uint64_t hl_nm_wall_ms(void);
int hl_nm_read_begin(hl_local *s, MDB_txn **txn);
/* A read transaction and a cursor on dbi. */
int hl_nm_cursor_begin(hl_local *s, MDB_dbi dbi, MDB_txn **txn, MDB_cursor **cur);
int hl_nm_write_begin(hl_local *s, MDB_txn **txn);
int hl_nm_write_end(hl_local *s, MDB_txn *txn, int err);
/* Calls row(key, value, ctx) for every row of table dbi, in key order, in one read transaction;
 * stops at the first nonzero return. A table that does not exist has no rows. */
typedef int (*hl_nm_row_fn)(const MDB_val *k, const MDB_val *v, void *ctx);
int hl_nm_table_each(hl_local *s, MDB_dbi dbi, hl_nm_row_fn row, void *ctx);

#endif

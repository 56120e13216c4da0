/* bench_l1.h — the L1 section of helios-bench. */
#ifndef HL_BENCH_L1_H
#define HL_BENCH_L1_H
void bench_l1(int runs);
#endif

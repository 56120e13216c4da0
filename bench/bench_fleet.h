/* bench_fleet.h — the 850-agent section of helios-bench. */
#ifndef HL_BENCH_FLEET_H
#define HL_BENCH_FLEET_H
void bench_fleet(const char *base_dir, int threads, double seconds);
#endif

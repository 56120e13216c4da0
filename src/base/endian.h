/* endian.h — little-endian integers in byte buffers: every on-disk and on-wire format of helios
 * is little-endian, read and written byte by byte (no alignment or host-order assumptions). */
#ifndef HL_BASE_ENDIAN_H
#define HL_BASE_ENDIAN_H
#include <stdint.h>

static inline void hl_put_le16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void hl_put_le32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline void hl_put_le64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static inline uint16_t hl_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t hl_le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline uint64_t hl_le64(const uint8_t *p) { return (uint64_t)hl_le32(p) | (uint64_t)hl_le32(p + 4) << 32; }

#endif

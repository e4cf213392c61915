/* The vector types and macros the Winograd transform files (winograd_f2.c, winograd_f4.c) share.
   Private to CKernels (not in include/): Swift never sees them.

   Eight and sixteen floats, unaligned: tensors start anywhere. These are the widths of the avx2
   and avx512f clones; each operation is one instruction in the clone of its width and split into
   narrower ones in the others. The transforms add, subtract and scale only (each including file
   turns FMA contraction off), so every clone and width gives the same bits. */
#ifndef CKERNELS_WINOGRAD_VECTORS_H
#define CKERNELS_WINOGRAD_VECTORS_H

typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int i8 __attribute__((vector_size(32), aligned(4)));
typedef int i16 __attribute__((vector_size(64), aligned(4)));

/* Macros, not functions: a function taking or returning v8 would have a different ABI in each clone. */
#define load8(p) (*(const v8 *)(p))
#define store8(p, v) (*(v8 *)(p) = (v))
#define load16(p) (*(const v16 *)(p))
#define store16(p, v) (*(v16 *)(p) = (v))
/* The one-channel tail, so one transform macro serves every width. */
#define LOAD1(p) (*(p))
#define STORE1(p, v) (*(p) = (v))

/* ReLU: lanes below zero cleared (NaN kept, as the scalar form does); `zero8`/`zero16` must be in scope. */
#define max0_8(v) ((v8)((i8)(v) & ~((v) < zero8)))
#define max0_16(v) ((v16)((i16)(v) & ~((v) < zero16)))
#define max0_1(v) ((v) < 0 ? 0.0f : (v))

#endif

#include <hdf5.h>

/* Constants that are macros over library globals or casts (H5OPEN ...), which Swift does not import.
   Each calls H5open() first, as the macros do, so the library is initialised before the first use. */
static inline hid_t chdf5_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t chdf5_c_string(void) { return H5T_C_S1; }
static inline hid_t chdf5_default_properties(void) { return H5P_DEFAULT; }
static inline unsigned chdf5_read_only(void) { return H5F_ACC_RDONLY; }
static inline hid_t chdf5_all(void) { return H5S_ALL; }
static inline size_t chdf5_variable_size(void) { return H5T_VARIABLE; }
/* Errors are reported by ranksweep, naming the user's file: the library must not print its stack. */
static inline void chdf5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

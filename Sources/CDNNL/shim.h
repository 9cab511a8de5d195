// oneDNN 2.x C API (Debian 12: libdnnl-dev 2.6.3).
#include <oneapi/dnnl/dnnl.h>

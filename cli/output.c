/*
 * How the verbs print quantities for people.
 */
#include "cli/cli.h"

#include <stdio.h>

void cli_human_size(uint64_t n, char *buf, size_t size)
{
    if (n < 1024)
        snprintf(buf, size, "%llu B", (unsigned long long)n);
    else if (n < 1024 * 1024)
        snprintf(buf, size, "%.1f KiB", (double)n / 1024);
    else if (n < 1024ULL * 1024 * 1024)
        snprintf(buf, size, "%.1f MiB", (double)n / (1024 * 1024));
    else
        snprintf(buf, size, "%.2f GiB", (double)n / (1024.0 * 1024 * 1024));
}

#include "shapes.hpp"
#include <cstdio>
int main() {
    double total = 0;
    for (auto* s : circles()) { total += s->area(); delete s; }
    for (auto* s : squares()) { total += s->area(); delete s; }
    std::printf("total area %.2f\n", total);
}

#include "shapes.hpp"
namespace { struct Circle : Shape { double r; explicit Circle(double r) : r(r) {} double area() const override { return area_scale(3.14159265 * r * r); } std::string name() const override { return "circle"; } }; }
std::vector<Shape*> circles() { return {new Circle(1), new Circle(2)}; }

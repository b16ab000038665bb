#include "shapes.hpp"
namespace { struct Square : Shape { double s; explicit Square(double s) : s(s) {} double area() const override { return area_scale(s * s); } std::string name() const override { return "square"; } }; }
std::vector<Shape*> squares() { return {new Square(3)}; }

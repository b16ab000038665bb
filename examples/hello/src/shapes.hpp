#pragma once
#include <string>
#include <vector>
extern "C" double area_scale(double);
struct Shape { virtual ~Shape() = default; virtual double area() const = 0; virtual std::string name() const = 0; };
std::vector<Shape*> circles();
std::vector<Shape*> squares();

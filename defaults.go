package permiso

// SetDefault sets *v to def when *v is zero or negative: the zero value
// of a setting (a lifetime, an interval, a size, a count) stands for its
// default.
func SetDefault[T ~int | ~int64](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

//! CLIP image preprocessing: shortest side to 224 (bicubic), centre crop, CLIP mean/std.

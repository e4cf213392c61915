// Compression module: see DESIGN.md

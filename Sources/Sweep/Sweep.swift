// Sweep module: see DESIGN.md

// Reports module: see DESIGN.md

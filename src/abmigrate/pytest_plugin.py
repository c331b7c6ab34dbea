# placeholder; filled by pytest-plugin work

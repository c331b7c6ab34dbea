"""What the project declares and the workspace it opens: settings, the declared baseline, the workspace."""

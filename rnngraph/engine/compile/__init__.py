"""The loop compiler: layout.py decides, codegen.py writes named source, runtime.py runs it."""

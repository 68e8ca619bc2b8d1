"""The course: what the chapters in chapters/ use, one module per chapter (`ch02_maml`, ...), plus the pieces they
share (`notebook`, `widgets`, `explorer`, `plots`, `viz`, `checks`). The library (`mlscratch` outside this folder)
never imports it.
"""

"""template.yaml for tests: read it (`template`), and make what it declares in moto (`provision`).

The functions' tests then run against the resources, environment and event sources that the
template itself describes, so the template and the code cannot drift apart unnoticed.
"""

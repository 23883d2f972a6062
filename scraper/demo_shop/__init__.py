"""The generated demo shop: products (products.py), photos (draw.py), web server (server.py)."""

# The Images guide (openai 0.28), "Using in-memory image data": the image as bytes from a BytesIO.
import json
import os
from io import BytesIO

import openai

openai.api_key = os.getenv("OPENAI_API_KEY")  # openai 0.28 reads OPENAI_API_BASE by itself

# This is the BytesIO object that contains your image data
byte_stream: BytesIO = BytesIO(open(os.getenv("IMAGE", "image.png"), "rb").read())
byte_array = byte_stream.getvalue()
response = openai.Image.create_variation(
  image=byte_array,
  n=1,
  size="1024x1024"
)
print(json.dumps({"image_url": response['data'][0]['url'], "urls": [image['url'] for image in response['data']]}))

# The Images guide (openai 0.28), "Operating on image data": resized with PIL, sent from a BytesIO.
import json
import os
from io import BytesIO

import openai
from PIL import Image

openai.api_key = os.getenv("OPENAI_API_KEY")  # openai 0.28 reads OPENAI_API_BASE by itself

# Read the image file from disk and resize it
image = Image.open(os.getenv("IMAGE", "image.png"))
width, height = 256, 256
image = image.resize((width, height))

# Convert the image to a BytesIO object
byte_stream = BytesIO()
image.save(byte_stream, format='PNG')
byte_array = byte_stream.getvalue()

response = openai.Image.create_variation(
  image=byte_array,
  n=1,
  size="1024x1024"
)
print(json.dumps({"image_url": response['data'][0]['url'], "urls": [image['url'] for image in response['data']]}))

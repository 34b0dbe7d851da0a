# The Images guide (openai 1.x and later), "Using in-memory image data": bytes from a BytesIO.
# The client reads OPENAI_API_KEY and OPENAI_BASE_URL.
import json
import os
from io import BytesIO

from openai import OpenAI

client = OpenAI()

# This is the BytesIO object that contains your image data
byte_stream: BytesIO = BytesIO(open(os.getenv("IMAGE", "image.png"), "rb").read())
byte_array = byte_stream.getvalue()
response = client.images.create_variation(
  image=byte_array,
  n=1,
  model="dall-e-2",
  size="1024x1024"
)
print(json.dumps({"image_url": response.data[0].url, "urls": [image.url for image in response.data], "request_id": response._request_id}))

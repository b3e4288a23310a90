# stylemix web app, CPU image:
#   docker build -t stylemix . && docker run -p 7860:7860 stylemix
# then open http://localhost:7860
#
# CUDA variant: start from an image that already has a CUDA build of PyTorch and skip the CPU
# wheel, e.g.
#   FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime
#   (drop the "torch==2.13.0 --index-url .../cpu" line below)
#   docker run --gpus all -p 7860:7860 stylemix python app.py --host 0.0.0.0 --device cuda
FROM python:3.11-slim

WORKDIR /app
RUN python -m pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY requirements.txt .
RUN python -m pip install --no-cache-dir -r requirements.txt
COPY . .

EXPOSE 7860
CMD ["python", "app.py", "--host", "0.0.0.0", "--port", "7860"]
